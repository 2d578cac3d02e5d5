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


def tiny_bert_preset(folder: Path, words: list[str], layers: int = 2, dim: int = 16) -> Path:
    """A randomly initialised BERT-style keras-hub preset (backbone and WordPiece
    tokenizer) written to `folder`: what `model.pretrained` reads, small enough for tests."""
    import keras_hub

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words,
                  *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"),
                  *"abcdefghijklmnopqrstuvwxyz0123456789'"]
    vocabulary = list(dict.fromkeys(vocabulary))
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary), num_layers=layers, num_heads=2, hidden_dim=dim,
        intermediate_dim=2 * dim, max_sequence_length=64)
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
    backbone.save_to_preset(str(folder))
    tokenizer.save_to_preset(str(folder))
    return folder
