"""`tfpipe compare` on any pipeline: runs written into a real embedded MLflow store through
the project's Tracker, with the params each pipeline's config really flattens to and the
metrics named as the runner logs them."""

from pathlib import Path

import pytest
from helpers import subprocess_env, tfpipe

from pipelines.cli import build_parser
from pipelines.core import config as cfgmod
from pipelines.core.registry import get_task_class
from pipelines.core.run_layout import run_dir_for
from pipelines.core.runner import load_task_config
from pipelines.core.tracking import NotTracked, Tracker

# Per pipeline: (main test metric, the other test metrics), and three runs' overrides.
PIPELINES = {
    "segmentation": (
        ("test_f1",),
        ("test_precision", "test_recall"),
        # model.units=64 is the default: the same value in all three runs
        # would not be shown, but the others run with 48.
        [["model.units=64"], ["model.units=48"], ["model.units=48", "train.learning_rate=0.01"]],
    ),
    "slots": (
        ("test_slot_f1",),
        ("test_intent_accuracy", "test_sentence_accuracy"),
        [[], ["model.crf=true"], ["model.crf=true", "train.epochs=9"]],
    ),
    "images": (
        ("test_accuracy",),
        (),
        [[], ["model.name=lenet"], ["model.name=vgg11", "train.batch_size=64"]],
    ),
}


def track_runs(workdir: Path, pipeline: str) -> list[dict[str, float]]:
    """Three finished runs of `pipeline` as the runner tracks them; returns their metrics."""
    (main,), others, overrides = PIPELINES[pipeline]
    written = []
    for i, extra in enumerate(overrides):
        config = load_task_config(pipeline, None, [f"run_name=r{i}", *extra])
        tracker = Tracker(workdir, pipeline)
        state = run_dir_for(workdir, pipeline, config.run_name)
        tracker.start(config.run_name, state)
        tracker.set_tags({"pipeline": pipeline})
        tracker.log_params(cfgmod.flatten(cfgmod.to_dict(config)))
        tracker.log_metrics({"loss": 1.0 / (i + 1), "val_loss": 1.0}, step=1)
        metrics = {
            main: 0.5 + 0.1 * i,
            **{m: 0.4 + 0.05 * i for m in others},
            "train_seconds": 60.0 * (i + 1),
            "epochs_run": 3,
            "train_examples_per_second": 1000.0 + i,
            "params": 12345 + i,
        }
        if i == 2:  # what a benchmark adds
            metrics["bench_latency_ms_p50"] = 4.25
        tracker.log_metrics(metrics, step=0)
        tracker.finish(state)
        written.append(metrics)
    return written


@pytest.fixture(scope="module")
def stores(tmp_path_factory, monkeypatch_module):
    monkeypatch_module.delenv("MLFLOW_TRACKING_URI", raising=False)
    workdir = tmp_path_factory.mktemp("compare")
    return workdir, {p: track_runs(workdir, p) for p in PIPELINES}


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def compare(capsys, *argv: str) -> list[str]:
    args = build_parser().parse_args(["compare", *argv])
    assert args.func(args) == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_table_shows_differing_params_and_every_figure(pipeline, stores, capsys, tmp_path):
    workdir, written = stores[0], stores[1][pipeline]
    (main,), others, overrides = PIPELINES[pipeline]
    plot = tmp_path / "plot.png"
    header, rule, *rows, plot_line = compare(
        capsys, pipeline, "--workdir", str(workdir), "--out", str(plot)
    )
    changed = sorted({o.split("=")[0] for extra in overrides for o in extra})
    columns = header.split()
    # Only the params that differ (run_name is the run column); then every figure.
    assert columns == [
        "run",
        *changed,
        *sorted([main, *others]),
        "params",
        "epochs_run",
        "train_seconds",
        "bench_latency_ms_p50",
        "train_examples_per_second",
    ]
    assert len(rows) == 3 and set(rule) == {"-", " "}
    for i, row in enumerate(rows):
        cells = dict(zip(columns, row.split(), strict=True))
        assert cells["run"] == f"r{i}"
        assert float(cells[main]) == pytest.approx(written[i][main], abs=1e-4)
        assert cells["train_seconds"] == f"{60 * (i + 1)}"
        assert cells["train_examples_per_second"] == f"{1000 + i:,}"
        assert cells["bench_latency_ms_p50"] == ("4.25" if i == 2 else "-")
    config = get_task_class(pipeline).config_class()
    defaults = cfgmod.flatten(cfgmod.to_dict(config))
    first = dict(zip(columns, rows[0].split(), strict=True))
    for key in changed:
        assert first[key] == str(defaults[key])
    # The main metric is the task's own (its early-stopping monitor's test twin).
    assert plot_line == f"plot of {main} against training time: {plot}"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5000


def test_named_params_and_metric(stores, capsys, tmp_path):
    workdir, _ = stores
    header, *_, plot_line = compare(
        capsys,
        "segmentation",
        "--workdir",
        str(workdir),
        "--params",
        "train.epochs,model.units",
        "--metric",
        "test_recall",
        "--out",
        str(tmp_path / "p.png"),
    )
    assert header.split()[:3] == ["run", "train.epochs", "model.units"]
    assert plot_line.startswith("plot of test_recall against training time")
    default = workdir / "compare-images.png"
    *_, plot_line = compare(
        capsys, "images", "--workdir", str(workdir), "--metric", "train_examples_per_second"
    )
    assert plot_line.endswith(str(default)) and default.stat().st_size > 5000


def test_unknown_metric_and_param_are_clear_errors(stores):
    workdir, _ = stores
    args = build_parser().parse_args(
        ["compare", "slots", "--workdir", str(workdir), "--metric", "test_f1"]
    )
    with pytest.raises(
        NotTracked,
        match=r"no metric 'test_f1' in the runs of 'slots' \(test "
        r"metrics: test_intent_accuracy, test_sentence_accuracy, test_slot_f1;",
    ):
        args.func(args)
    args = build_parser().parse_args(
        ["compare", "slots", "--workdir", str(workdir), "--params", "model.crf,model.unitz"]
    )
    with pytest.raises(NotTracked, match=r"no param model.unitz in these runs \(params: "):
        args.func(args)


@pytest.mark.slow
def test_cli_error_names_the_available_metrics(stores):
    """Exit status 2 and the message, without KeyError's quotes."""
    workdir, _ = stores
    proc = tfpipe(
        "compare", "images", "--workdir", str(workdir), "--metric", "test_f1", env=subprocess_env()
    )
    assert proc.returncode == 2
    assert (
        "tfpipe: error: no metric 'test_f1' in the runs of 'images' (test metrics: test_accuracy;"
    ) in proc.stderr


def test_tune_trials_show_their_tune_and_number_and_filter_by_parent(tmp_path, capsys, monkeypatch):
    """Nested runs as `tfpipe tune` writes them: each trial names its tune and number and
    how it ended; --parent shows one tune's trials only."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    workdir = tmp_path / "w"
    tunes = {}
    for tune in ("tune-a", "tune-b"):
        parent = Tracker(workdir, "slots")
        tunes[tune] = parent.start(tune, tmp_path / tune)
        parent.set_tags({"tune.trials": "2"})
        for number, state in enumerate(("complete", "pruned")):
            name = f"{tune}-trial-{number}"
            config = load_task_config(
                "slots", None, [f"run_name={name}", f"model.units={16 + number}"]
            )
            trial = Tracker(workdir, "slots")
            trial.start(name, tmp_path / name, parent_run_id=tunes[tune])
            trial.log_params(cfgmod.flatten(cfgmod.to_dict(config)))
            trial.set_tags({"tune.trial": str(number), "tune.state": state})
            trial.log_metrics({"test_slot_f1": 0.5, "best_val_slot_f1": 0.6 - 0.1 * number}, step=0)
            trial.finish(tmp_path / name)
        parent.log_metrics({"best_val_slot_f1": 0.6}, step=0)
        parent.finish(tmp_path / tune)

    header, _, *rows, _ = compare(
        capsys, "slots", "--workdir", str(workdir), "--out", str(tmp_path / "p.png")
    )
    assert header.split()[:3] == ["run", "trial", "state"] and "best_val_slot_f1" in header.split()
    assert [row.split()[:3] for row in rows[:3]] == [
        ["tune-a", "2", "trials"],
        ["tune-a-trial-0", "tune-a#0", "complete"],
        ["tune-a-trial-1", "tune-a#1", "pruned"],
    ]
    for ref in (tunes["tune-b"], "tune-b", "b"):  # its run id, its run name, the tune's name
        header, _, *rows, _ = compare(
            capsys,
            "slots",
            "--workdir",
            str(workdir),
            "--parent",
            ref,
            "--out",
            str(tmp_path / "p.png"),
        )
        assert [row.split()[:3] for row in rows] == [
            ["tune-b-trial-0", "tune-b#0", "complete"],
            ["tune-b-trial-1", "tune-b#1", "pruned"],
        ]
        assert header.split()[3] == "model.units"  # the tuned key differs between the trials
    args = build_parser().parse_args(
        ["compare", "slots", "--workdir", str(workdir), "--parent", "c"]
    )
    with pytest.raises(
        NotTracked, match=r"no tune run 'c' in the experiment 'slots' \(tunes: tune-b, tune-a\)"
    ):
        args.func(args)
