"""Shared benchmark helpers: machine description, SavedModel timing, JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import tensorflow as tf

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "platform": platform.platform(),
    }


def latencies_ms(call: Callable[[Any], Any], items: Sequence[Any], warmup: int = 5) -> list[float]:
    """Wall time of one call per item (batch of one), in milliseconds, after a warm-up."""
    for item in items[:warmup]:
        call(item)
    times = []
    for item in items:
        start = time.perf_counter()
        call(item)
        times.append((time.perf_counter() - start) * 1000)
    return times


def latency_ms_p50(call: Callable[[Any], Any], items: Sequence[Any], warmup: int = 5) -> float:
    """Median wall time of one call per item (batch of one), in milliseconds."""
    return statistics.median(latencies_ms(call, items, warmup))


def write_report(report: dict[str, Any], out: str | None) -> None:
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n", encoding="utf-8")


def data_dir_arg(value: str | None) -> Path:
    chosen = value or os.environ.get("TFPIPE_DATA_DIR")
    if not chosen:
        raise SystemExit("give --data-dir or set TFPIPE_DATA_DIR (e.g. ../shared/data)")
    return Path(chosen)
