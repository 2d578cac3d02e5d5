"""Helpers for tests: running the real CLI in a fresh process, tiny configs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"

# Small enough to train in seconds, big enough to learn the sample corpus.
TINY_SEGMENTATION = [
    "train.epochs=3",
    "train.batch_size=32",
    "train.verbose=2",
    "model.char_dim=32",
    "model.bigram_dim=16",
    "model.units=32",
    "model.layers=1",
    "model.projection=16",
    "export.warmup_requests=3",
]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def tfpipe(*args: str, env: dict[str, str] | None = None, timeout: int = 600,
           cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real CLI in a fresh process (`python -m pipelines`)."""
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args], capture_output=True, text=True,
        env=env or subprocess_env(), timeout=timeout, cwd=cwd or ROOT,
    )


def set_args(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]
