"""What every benchmark shares: its recipe is a `configs/*.yaml` file run by the runner
(`tfpipe run` reproduces it), the data folder is resolved as the CLI does, every SavedModel
is timed the same way, and the report is printed, written as JSON and logged to the run.

Scripts import this as `common` (Python puts a script's own folder on `sys.path`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipelines.core.quiet import quiet_start

ROOT = Path(__file__).resolve().parent.parent


def parser(description: str, default_config: str | None = None) -> argparse.ArgumentParser:
    """The flags every benchmark takes (scripts add their own)."""
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--config",
        default=default_config,
        help="recipe (configs/*.yaml)" + (f"; default {default_config}" if default_config else ""),
    )
    p.add_argument("--data-dir", help="the shared corpora (default: $TFPIPE_DATA_DIR)")
    p.add_argument("--minutes", type=float, help="training time budget (train.max_minutes)")
    p.add_argument("--out", required=True, help="JSON file for the figures")
    p.add_argument(
        "--workdir",
        help="keep the run, its kept model and export here "
        "(default: a temporary folder, removed after)",
    )
    p.add_argument("--export", help="skip training: measure this SavedModel")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key (repeatable), e.g. --set serving.fused_lstm=false",
    )
    p.add_argument("--verbose", action="store_true", help="TensorFlow's start-up output too")
    return p


def data_dir(args: argparse.Namespace) -> Path:
    """`--data-dir` or `$TFPIPE_DATA_DIR`: benchmarks never fall back to the samples."""
    from pipelines.core.run_layout import resolve_data_dir

    if not (args.data_dir or os.environ.get("TFPIPE_DATA_DIR")):
        raise SystemExit("give --data-dir or set TFPIPE_DATA_DIR (e.g. ../shared/data)")
    return resolve_data_dir(args.data_dir)


def recipe(pipeline: str, args: argparse.Namespace, extra: Sequence[str] = ()):
    """The recipe file with `--minutes`, `extra` and `--set` applied, in that order."""
    from pipelines.core.runner import load_task_config

    quiet_start(args.verbose)
    overrides = [f"train.max_minutes={args.minutes}"] if args.minutes else []
    return load_task_config(pipeline, args.config, [*overrides, *extra, *args.set])


def train(pipeline: str, config, args: argparse.Namespace):
    """`run_pipeline` in `--workdir` (or a temporary one); returns its `RunResult`."""
    from pipelines.core.runner import run_pipeline

    workdir = (
        Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix=f"bench-{pipeline}-"))
    )
    return run_pipeline(pipeline, config, data_dir(args), workdir)


def train_or_export(pipeline: str, args: argparse.Namespace, extra: Sequence[str] = ()):
    """(config, run result or None, export folder): the recipe trained, or with
    `--export` an existing SavedModel to measure instead."""
    config = recipe(pipeline, args, extra)
    if args.export:
        return config, None, Path(args.export)
    result = train(pipeline, config, args)
    return config, result, result.export_dir


def load_signature(export_dir: Path, signature: str = "serving_default"):
    from pipelines.core.predict import load_signature as load

    return load(Path(export_dir), signature)


def export_metadata(export_dir: Path) -> dict[str, Any]:
    """The run and serving options an export was written with."""
    from pipelines.core.export import export_metadata as read

    return read(Path(export_dir))


@dataclasses.dataclass
class Timing:
    items_per_second: float  # batched, the median of `passes` passes
    latency_ms_p50: float  # one item per call
    latency_ms_p90: float
    passes: int
    items: float  # what was counted: requests, characters, seconds of audio...

    def latency_figures(self, digits: int = 2) -> dict[str, float]:
        """`latency_ms_p50` and `latency_ms_p90`, as every benchmark reports them."""
        return {
            "latency_ms_p50": round(self.latency_ms_p50, digits),
            "latency_ms_p90": round(self.latency_ms_p90, digits),
        }


def time_signature(
    call: Callable[[Any], Any],
    batches: Sequence[Any],
    items: float,
    singles: Sequence[Any],
    passes: int = 3,
    warmup: int = 20,
) -> Timing:
    """Throughput over `batches` (`items` in all; the median of `passes` passes) and the
    latency of one-item requests `singles`, after warming both up. `call` takes one
    request and must return only once its outputs are computed (e.g. `.numpy()`)."""
    for request in list(batches[:2]) + list(singles[:warmup]):
        call(request)
    seconds = []
    for _ in range(passes):
        started = time.perf_counter()
        for request in batches:
            call(request)
        seconds.append(time.perf_counter() - started)
    latencies = []
    for request in singles:
        started = time.perf_counter()
        call(request)
        latencies.append((time.perf_counter() - started) * 1000)
    return Timing(
        items / statistics.median(seconds),
        statistics.median(latencies),
        statistics.quantiles(latencies, n=10)[-1] if len(latencies) > 1 else latencies[0],
        passes,
        items,
    )


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


def run_figures(result) -> dict[str, Any]:
    """What every training benchmark reports about its run."""
    if result is None:
        return {}
    return {
        "train_seconds": round(result.train_seconds, 1),
        "epochs": result.epochs_run,
        "train_examples_per_second": (
            round(result.train_examples_per_second, 1) if result.train_examples_per_second else None
        ),
        "mlflow_run_id": result.run_id,
        "export_dir": str(result.export_dir),
    }


def write_report(report: dict[str, Any], out: str | Path, result=None) -> None:
    """Print the figures, write them as JSON to `out`, and log the numbers (as `bench_*`
    metrics) and the JSON to the MLflow run they measured, so `tfpipe compare` sees them."""
    report = {**report, "machine": machine()}
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    if result is not None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(result.tracking_uri)
        for key, value in report.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                client.log_metric(result.run_id, f"bench_{key}", float(value))
        client.log_artifact(result.run_id, str(out), "bench")
