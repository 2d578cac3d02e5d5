"""`tfpipe tune` against a real `mlflow server` on 127.0.0.1: six LeNet trials on the bundled
images, nested under the tune's run, pruned on the per-epoch validation loss, the best
config written as a recipe that `tfpipe run --config` loads, `tfpipe compare` showing the
trials. The space file's checks need no training."""

import sys

import pytest
from helpers import DATA
from servers import mlflow_server

from pipelines.cli import build_parser
from pipelines.core.config import ConfigError
from pipelines.core.registry import get_task_class
from pipelines.core.runner import load_task_config
from pipelines.core.tune_space import load_space

TRIALS = 6
SPACE = """\
metric: val_loss
base: {train.epochs: 2, model.name: lenet}
pruning: {startup_trials: 2}
params:
  train.learning_rate: {low: 1.0e-4, high: 1.0, log: true}
  model.dropout: {choices: [0.0, 0.3]}
"""
# Tiny and quick: no Grad-CAM grids, no progress bars.
SETTINGS = ["data.explain_images=0", "data.misclassified_images=0", "train.verbose=0"]


def test_space_keys_and_values_are_checked_before_any_trial(tmp_path):
    config = load_task_config("segmentation", None)
    task = get_task_class("segmentation")

    def space(text: str):
        path = tmp_path / "space.yaml"
        path.write_text(text)
        return load_space(path, task, config)

    parsed = space("params:\n  model.units: {low: 16, high: 64, step: 16}\n")
    assert (parsed.metric, parsed.direction) == ("val_f1", "maximize")  # the task's monitor
    assert type(parsed.distributions["model.units"]).__name__ == "IntDistribution"
    loss = space("metric: val_loss\nparams:\n  train.learning_rate: {low: 1, high: 2}\n")
    assert loss.direction == "minimize"
    assert type(loss.distributions["train.learning_rate"]).__name__ == "FloatDistribution"
    with pytest.raises(ConfigError, match=r"space.yaml: params.model.unitz.low: unknown config"):
        space("params:\n  model.unitz: {low: 16, high: 64}\n")
    with pytest.raises(ConfigError, match=r"params.model.units.high: model.units: expected an"):
        space("params:\n  model.units: {low: 16, high: 64.5}\n")
    with pytest.raises(ConfigError, match=r"params.model.use_bigrams.choices\[1\]: model.use_bi"):
        space("params:\n  model.use_bigrams: {choices: [true, 3]}\n")
    with pytest.raises(ConfigError, match=r"model.cell is str, not a number: give choices"):
        space("params:\n  model.cell: {low: 1, high: 2}\n")
    with pytest.raises(ConfigError, match=r"base: unknown config key 'train.epoch'"):
        space("base: {train.epoch: 2}\nparams:\n  model.units: {choices: [16]}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'trials' \(known here: metric, "):
        space("trials: 3\nparams:\n  model.units: {choices: [16]}\n")
    with pytest.raises(ConfigError, match=r"params.train.learning_rate: .*low"):
        space("params:\n  train.learning_rate: {low: 0.1, high: 0.01}\n")
    with pytest.raises(ConfigError, match=r"params: no config keys to tune"):
        space("params: {}\n")


def test_without_optuna_the_cli_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    from pipelines.cli import main

    (tmp_path / "space.yaml").write_text(SPACE)
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` fails as if missing
    status = main(["tune", "images", "--space", str(tmp_path / "space.yaml"), "--trials", "1"])
    assert status == 2
    assert 'tfpipe tune needs Optuna: pip install -e ".[tune]"' in capsys.readouterr().err


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = tmp_path_factory.mktemp("tune-store")
    with mlflow_server(f"sqlite:///{store}/mlflow.db", store / "artifacts") as url:
        yield url


@pytest.mark.slow
def test_six_trials_nested_pruned_and_the_best_as_a_recipe(server, tmp_path, monkeypatch, capsys):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    (tmp_path / "space.yaml").write_text(SPACE)
    workdir, recipe = tmp_path / "w", tmp_path / "best.yaml"
    argv = ["tune", "images", "--space", str(tmp_path / "space.yaml"), "--trials", str(TRIALS)]
    argv += ["--workdir", str(workdir), "--data-dir", str(DATA), "--name", "t"]
    argv += ["--out", str(recipe), *(a for s in SETTINGS for a in ("--set", s))]
    args = build_parser().parse_args(argv)
    assert args.func(args) == 0
    out = capsys.readouterr().out

    client = MlflowClient(server)
    experiment = client.get_experiment_by_name("images")
    (parent,) = client.search_runs(
        [experiment.experiment_id], "attributes.run_name = 'tune-t'", max_results=5
    )
    trials = client.search_runs(
        [experiment.experiment_id],
        f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'",
        order_by=["attributes.start_time ASC"],
    )
    assert [t.info.run_name for t in trials] == [f"tune-t-trial-{i}" for i in range(TRIALS)]
    assert [t.data.tags["tune.trial"] for t in trials] == [str(i) for i in range(TRIALS)]
    states = [t.data.tags["tune.state"] for t in trials]
    assert set(states) <= {"complete", "pruned"}, states
    for trial, state in zip(trials, states, strict=True):
        assert trial.info.status == "FINISHED"
        assert trial.data.params["export.enabled"] == "False"  # trials export nothing
        assert trial.data.params["model.name"] == "lenet"  # the space's base
        # What Optuna was told is what MLflow logged for the epochs it trained.
        history = client.get_metric_history(trial.info.run_id, "val_loss")
        assert trial.data.metrics["best_val_loss"] == min(p.value for p in history)
        assert len(history) == trial.data.metrics["epochs_run"]
        if state == "complete":
            assert len(history) == 2
    # The two startup trials always complete. The seeded sampler goes on to learning rates
    # above 0.1, whose first epoch's loss is far above the median: pruned, training stopped.
    assert states[:2] == ["complete", "complete"]
    stopped = [t for t, s in zip(trials, states, strict=True) if s == "pruned"]
    assert any(t.data.metrics["epochs_run"] == 1 for t in stopped), states
    assert not (workdir / "exports").exists()

    complete = [t for t, s in zip(trials, states, strict=True) if s == "complete"]
    best = min(complete, key=lambda t: t.data.metrics["best_val_loss"])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["tune.best_run_id"] == best.info.run_id
    assert parent.data.tags["tune.trials"] == str(TRIALS)
    assert parent.data.metrics["best_val_loss"] == best.data.metrics["best_val_loss"]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "tune")}
    assert artifacts == {"tune/space.yaml", "tune/best.yaml"}

    # The recipe: the trials' base, the best trial's values, loadable by `tfpipe run`.
    config = load_task_config("images", recipe)
    assert str(config.train.learning_rate) == best.data.params["train.learning_rate"]
    assert str(config.model.dropout) == best.data.params["model.dropout"]
    assert (config.model.name, config.train.epochs, config.export.enabled) == ("lenet", 2, True)
    assert parent.data.params["train.learning_rate"] == best.data.params["train.learning_rate"]
    table = out[out.index("trial  run") :].splitlines()
    assert len(table) == 2 + TRIALS + 2  # header, rule, trials, best, recipe
    assert f"best: trial {best.data.tags['tune.trial']}, val_loss=" in table[-2]

    # compare: the tune's trials only, each named by tune and number, with its state.
    args = build_parser().parse_args(
        ["compare", "images", "--workdir", str(workdir), "--parent", "tune-t"]
    )
    assert args.func(args) == 0
    header, _, *rows, _ = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["run", "trial", "state"] and "best_val_loss" in header
    assert [row.split()[:3] for row in rows] == [
        [f"tune-t-trial-{i}", f"tune-t#{i}", state] for i, state in enumerate(states)
    ]
