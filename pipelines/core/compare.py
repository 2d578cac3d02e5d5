"""`tfpipe compare PIPELINE`: the runs of any pipeline's MLflow experiment side by side.

Everything comes from MLflow, nothing is per pipeline: the params (flattened config keys)
whose values differ between the runs, every `test_*` metric, the model size, epochs,
`train_seconds` and every speed figure tracked (`*_per_second`, `*latency*`: the runner's
`train_examples_per_second` and what the benchmarks add). It prints a table and writes a PNG
of one metric against training time.

The trials of `tfpipe tune` are nested MLflow runs: the table names each one's tune and
number, its state (complete or pruned) and its `best_*` value, and `--parent TUNE` shows
only one tune's trials.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Params every run has that the table shows another way (the run column) or that say nothing.
HIDDEN_PARAMS = ("run_name", "pipeline")


def load_runs(pipeline: str, workdir: Path, parent: str | None = None) -> list[dict[str, Any]]:
    """Finished runs of the experiment named after `pipeline`, oldest first; with
    `parent` (a tune's run id or name) only that tune's trials."""
    from mlflow.tracking import MlflowClient

    from pipelines.core.tracking import (
        PARENT_TAG,
        TRIAL_STATE_TAG,
        TRIAL_TAG,
        TUNE_TRIALS_TAG,
        tracking_uri,
    )

    uri = tracking_uri(Path(workdir))
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(pipeline)
    if experiment is None:
        raise FileNotFoundError(
            f"no MLflow experiment '{pipeline}' at {uri} (run `tfpipe run "
            f"{pipeline}` first, or pass --workdir)"
        )
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string="",
        order_by=["attributes.start_time ASC"],
        max_results=1000,
    )
    names = {r.info.run_id: r.info.run_name or r.info.run_id[:8] for r in runs}
    if parent is not None:
        parent_id = _tune_run_id(runs, parent, pipeline)
        runs = [r for r in runs if r.data.tags.get(PARENT_TAG) == parent_id]
    out = []
    for r in runs:
        if r.info.status != "FINISHED":
            continue
        tags = dict(r.data.tags)
        run = {
            "run_id": r.info.run_id,
            "run_name": names[r.info.run_id],
            "params": dict(r.data.params),
            "metrics": dict(r.data.metrics),
            "tags": tags,
        }
        if PARENT_TAG in tags:
            tune = names.get(tags[PARENT_TAG], tags[PARENT_TAG][:8])
            run["trial"] = f"{tune}#{tags.get(TRIAL_TAG, '?')}"
            run["state"] = tags.get(TRIAL_STATE_TAG)
        elif TUNE_TRIALS_TAG in tags:
            run["trial"], run["state"] = f"{tags[TUNE_TRIALS_TAG]} trials", "tune"
        out.append(run)
    return out


def _tune_run_id(runs: Sequence[Any], ref: str, pipeline: str) -> str:
    """The run id of the tune `ref` names: its id, else the newest tune of that run name
    (`tune-NAME`, or NAME alone)."""
    from pipelines.core.tracking import TUNE_TRIALS_TAG, NotTracked

    tunes = [r for r in reversed(runs) if TUNE_TRIALS_TAG in r.data.tags]
    for run in tunes:
        if ref in (run.info.run_id, run.info.run_name) or run.info.run_name == f"tune-{ref}":
            return run.info.run_id
    known = ", ".join(dict.fromkeys(r.info.run_name for r in tunes)) or "none"
    raise NotTracked(f"no tune run '{ref}' in the experiment '{pipeline}' (tunes: {known})")


def differing_params(runs: Sequence[dict[str, Any]], named: Sequence[str] = ()) -> list[str]:
    """`named` (each must be a param of some run), else every param whose value is not the
    same in all runs (a param missing from a run counts as a different value)."""
    from pipelines.core.tracking import NotTracked

    known = sorted({k for run in runs for k in run["params"]})
    if named:
        unknown = [name for name in named if name not in known]
        if unknown:
            raise NotTracked(
                f"no param {', '.join(unknown)} in these runs (params: {', '.join(known)})"
            )
        return list(named)
    return [
        k
        for k in known
        if k not in HIDDEN_PARAMS and len({run["params"].get(k) for run in runs}) > 1
    ]


def is_speed_figure(metric: str) -> bool:
    """Throughput and latency, the runner's and the benchmarks' (`bench_latency_ms_p50`)."""
    return metric.endswith("_per_second") or "latency" in metric


def metric_columns(runs: Sequence[dict[str, Any]]) -> list[str]:
    """Test metrics, then size, epochs and time, then speed figures: those any run has."""
    names = {k for run in runs for k in run["metrics"]}
    tests = sorted(k for k in names if k.startswith("test_") or k.startswith("best_"))
    speed = sorted(k for k in names if is_speed_figure(k))
    return tests + [k for k in ("params", "epochs_run", "train_seconds") if k in names] + speed


def choose_metric(runs: Sequence[dict[str, Any]], pipeline: str, metric: str | None) -> str:
    """`metric` if a run has it; else the test metric of the task's early-stopping monitor
    (`val_f1` -> `test_f1`), else the first `test_*` metric."""
    from pipelines.core.tracking import NotTracked

    names = sorted({k for run in runs for k in run["metrics"]})
    tests = [k for k in names if k.startswith("test_")]
    if metric:
        if metric not in names:
            raise NotTracked(
                f"no metric '{metric}' in the runs of '{pipeline}' (test "
                f"metrics: {', '.join(tests) or 'none'}; all: {', '.join(names)})"
            )
        return metric
    if not tests:
        raise NotTracked(
            f"the runs of '{pipeline}' have no test_* metric; choose one "
            f"with --metric ({', '.join(names)})"
        )
    main = f"test_{_task_monitor(pipeline).removeprefix('val_')}"
    return main if main in tests else tests[0]


def _task_monitor(pipeline: str) -> str:
    from pipelines.core.registry import get_task_class, pipeline_tasks

    return get_task_class(pipeline).default_monitor if pipeline in pipeline_tasks() else ""


def _format(value: Any, metric: str | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if metric is None:
        return str(value)
    if metric.startswith(("test_", "best_")):
        return f"{value:.4f}"
    return f"{value:,.0f}" if value == int(value) or abs(value) >= 100 else f"{value:.2f}"


def format_table(runs: Sequence[dict[str, Any]], params: Sequence[str]) -> str:
    """Plain text, one row per run: run name, the params given, then the metric columns."""
    metrics = metric_columns(runs)
    tune = ["trial", "state"] if any("trial" in run for run in runs) else []
    rows = [["run", *tune, *params, *metrics]]
    rows += [
        [
            run["run_name"],
            *(_format(run.get(column)) for column in tune),
            *(_format(run["params"].get(p)) for p in params),
            *(_format(run["metrics"].get(m), m) for m in metrics),
        ]
        for run in runs
    ]
    return text_table(rows, 1 + len(tune) + len(params))


def text_table(rows: Sequence[Sequence[str]], text_columns: int) -> str:
    """`rows` (the first: the header) in aligned columns under a rule: the first
    `text_columns` left-aligned, the others (figures) right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(w) if i < text_columns else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def metric_time_png(
    runs: Sequence[dict[str, Any]], metric: str, params: Sequence[str], path: Path
) -> Path:
    """Scatter of `metric` against training minutes, each point labelled with its run name
    and the values of `params`."""
    import matplotlib.pyplot as plt

    from pipelines.core.plots import save_png

    def label(run: dict[str, Any]) -> str:
        values = ", ".join(f"{p}={run['params'].get(p, '-')}" for p in params[:3])
        return f"{run['run_name']} ({values})" if values else run["run_name"]

    points = [
        (run["metrics"]["train_seconds"] / 60, run["metrics"][metric], label(run))
        for run in runs
        if "train_seconds" in run["metrics"] and metric in run["metrics"]
    ]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for minutes, value, text in points:
        ax.scatter(minutes, value, s=40)
        ax.annotate(text, (minutes, value), textcoords="offset points", xytext=(5, 4), fontsize=8)
    if not points:
        ax.text(
            0.5,
            0.5,
            f"no runs with {metric} and train_seconds",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    ax.set_xlabel("training time (minutes)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} against training time")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_png(fig, path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipeline", help="pipeline (= MLflow experiment) name, e.g. images")
    parser.add_argument(
        "--workdir", default="runs", help="holds mlflow.db (or set MLFLOW_TRACKING_URI)"
    )
    parser.add_argument(
        "--metric",
        help="metric to plot (default: the test metric of the "
        "task's early-stopping monitor, else the first test_* metric)",
    )
    parser.add_argument(
        "--params",
        help="comma-separated params to show (default: every param that differs between the runs)",
    )
    parser.add_argument(
        "--out", "--plot", dest="out", help="PNG path (default: WORKDIR/compare-PIPELINE.png)"
    )
    parser.add_argument(
        "--parent",
        metavar="TUNE_RUN",
        help="only the trials of this `tfpipe tune` (its MLflow run id or run name, tune-NAME)",
    )


def main(args: argparse.Namespace) -> int:
    """Print the table and write the plot; returns the exit status."""
    runs = load_runs(args.pipeline, Path(args.workdir), args.parent)
    if not runs:
        of = f"tune {args.parent} in " if args.parent else ""
        print(f"no finished runs of {of}experiment '{args.pipeline}'")
        return 1
    named = [p.strip() for p in (args.params or "").split(",") if p.strip()]
    params = differing_params(runs, named)
    metric = choose_metric(runs, args.pipeline, args.metric)
    print(format_table(runs, params))
    out = Path(args.out) if args.out else Path(args.workdir) / f"compare-{args.pipeline}.png"
    print(f"plot of {metric} against training time: {metric_time_png(runs, metric, params, out)}")
    return 0
