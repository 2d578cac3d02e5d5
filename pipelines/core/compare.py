"""`tfpipe compare PIPELINE`: the runs of a pipeline's MLflow experiment side by side.

Everything comes from MLflow (params such as `model.name`, metrics such as `test_accuracy`,
`train_seconds`, and what the benchmarks add: `params`, `train_images_per_second`,
`serving_images_per_second`, `latency_ms_p50`), so the table shows exactly what was
tracked. It prints a table and writes a PNG of test accuracy against training time.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# (column title, where: "param"/"metric"/"run", key, format)
COLUMNS: list[tuple[str, str, str, str]] = [
    ("run", "run", "run_name", "{}"),
    ("model", "param", "model.name", "{}"),
    ("data", "run", "data", "{}"),
    ("params", "metric", "params", "{:,.0f}"),
    ("epochs", "metric", "epochs_run", "{:.0f}"),
    ("train s", "metric", "train_seconds", "{:.0f}"),
    ("train img/s", "metric", "train_images_per_second", "{:.0f}"),
    ("serve img/s", "metric", "serving_images_per_second", "{:.0f}"),
    ("p50 ms", "metric", "latency_ms_p50", "{:.1f}"),
]


def tracking_uri(workdir: Path) -> str:
    from pipelines.core.tracking import tracking_uri as uri

    return uri(Path(workdir))


def load_runs(pipeline: str, workdir: Path) -> list[dict[str, Any]]:
    """Finished runs of the experiment named after `pipeline`, oldest first."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri(workdir))
    experiment = client.get_experiment_by_name(pipeline)
    if experiment is None:
        raise FileNotFoundError(
            f"no MLflow experiment '{pipeline}' at {tracking_uri(workdir)} "
            f"(run `tfpipe run {pipeline}` first, or pass --workdir)"
        )
    runs = client.search_runs([experiment.experiment_id], filter_string="",
                              order_by=["attributes.start_time ASC"], max_results=1000)
    return [
        {"run_id": r.info.run_id, "run_name": r.info.run_name or r.info.run_id[:8],
         "status": r.info.status, "params": dict(r.data.params),
         "metrics": dict(r.data.metrics),
         # The data set's folder name, e.g. "cifar10" (runs on several sets side by side).
         "data": Path(r.data.params["data.path"]).name if r.data.params.get("data.path")
         else None}
        for r in runs if r.info.status == "FINISHED"
    ]


def test_metric_names(runs: Sequence[dict[str, Any]]) -> list[str]:
    """Every `test_*` metric any run has, sorted."""
    return sorted({k for run in runs for k in run["metrics"] if k.startswith("test_")})


def _value(run: dict[str, Any], where: str, key: str) -> Any:
    if where == "run":
        return run.get(key)
    return run["params" if where == "param" else "metrics"].get(key)


def _format(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def format_table(runs: Sequence[dict[str, Any]]) -> str:
    """A plain-text table: one row per run, the test metrics after the model."""
    columns = COLUMNS[:3] + [(name, "metric", name, "{:.4f}") for name in
                             test_metric_names(runs)] + COLUMNS[3:]
    present = [c for c in columns if c[2] == "run_name" or any(
        _value(run, c[1], c[2]) is not None for run in runs)]
    rows = [[title for title, *_ in present]]
    rows += [[_format(_value(run, where, key), fmt) for _, where, key, fmt in present]
             for run in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(present))]
    text_columns = sum(1 for _, where, *_ in present if where != "metric")
    lines = ["  ".join(cell.ljust(w) if i < text_columns else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def accuracy_time_png(runs: Sequence[dict[str, Any]], metric: str, path: Path) -> Path:
    """Scatter of `metric` against training seconds, one labelled point per run."""
    import matplotlib.pyplot as plt

    from pipelines.core.plots import save_png

    several_sets = len({run["data"] for run in runs}) > 1

    def label(run: dict[str, Any]) -> str:
        name = run["params"].get("model.name") or run["run_name"]
        return f"{name} ({run['data']})" if several_sets and run["data"] else name

    points = [(run["metrics"]["train_seconds"], run["metrics"][metric], label(run))
              for run in runs if "train_seconds" in run["metrics"] and metric in run["metrics"]]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for seconds, value, label in points:
        ax.scatter(seconds / 60, value, s=40)
        ax.annotate(label, (seconds / 60, value), textcoords="offset points", xytext=(5, 4),
                    fontsize=8)
    if not points:
        ax.text(0.5, 0.5, f"no runs with {metric} and train_seconds", ha="center",
                va="center", transform=ax.transAxes)
    ax.set_xlabel("training time (minutes)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} against training time")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_png(fig, path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipeline", help="pipeline (= MLflow experiment) name, e.g. images")
    parser.add_argument("--workdir", default="runs", help="holds mlflow.db (or set "
                        "MLFLOW_TRACKING_URI)")
    parser.add_argument("--metric", help="metric for the plot (default: test_accuracy, or the "
                        "first test_* metric)")
    parser.add_argument("--plot", help="PNG path (default: WORKDIR/compare-PIPELINE.png)")


def main(args: argparse.Namespace) -> int:
    """Print the table and write the plot; returns the exit status."""
    runs = load_runs(args.pipeline, Path(args.workdir))
    if not runs:
        print(f"no finished runs in experiment '{args.pipeline}'")
        return 1
    print(format_table(runs))
    names = test_metric_names(runs)
    metric = args.metric or ("test_accuracy" if "test_accuracy" in names
                             else (names[0] if names else "test_accuracy"))
    plot = Path(args.plot) if args.plot else Path(args.workdir) / f"compare-{args.pipeline}.png"
    print(f"plot: {accuracy_time_png(runs, metric, plot)}")
    return 0
