"""`tfpipe tune PIPELINE --space FILE --trials N`: a hyperparameter search with Optuna.

Each trial is an ordinary run of the pipeline (`runner.run_pipeline`, in this process) with
the trial's values of the space's config keys (`pipelines.core.tune_space`), nested in
MLflow under the tune's own run `tune-NAME` as `tune-NAME-trial-K`, and exported nowhere. A
Keras callback reports the tuned metric to Optuna after every epoch; a median pruner stops a
trial whose best value so far trails the median of the complete trials' at that epoch. A TPE
sampler seeded with `train.seed` chooses the values, so the same tune repeats its choices.
The best complete trial's config is written as a recipe for `tfpipe run --config`, and kept
with the tune's run with its value and params.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras

from pipelines.core import config as cfgmod
from pipelines.core.registry import get_task_class
from pipelines.core.run_layout import run_dir_for
from pipelines.core.runner import load_task_config, run_pipeline
from pipelines.core.tracking import TRIAL_STATE_TAG, TRIAL_TAG, TUNE_TRIALS_TAG
from pipelines.core.tune_space import SearchSpace, load_space, require_optuna

COMPLETE, PRUNED, FAILED = "complete", "pruned", "failed"  # a trial's tune.state


@dataclasses.dataclass
class Trial:
    """One trial: its run and how it ended."""

    number: int
    run_id: str
    run_name: str
    state: str  # complete | pruned | failed (its metric was not a number)
    value: float | None  # the tuned metric's best epoch value
    epochs: int
    params: dict[str, Any]


@dataclasses.dataclass
class TuneSetup:
    """What every trial of one tune starts from."""

    pipeline: str
    config_file: str | Path | None
    overrides: list[str]
    data_dir: str | Path | None
    workdir: Path
    space: SearchSpace
    name: str  # the tune's run name, tune-NAME
    tracker: Any  # pipelines.core.tracking.Tracker of the tune's run

    def config_with(self, params: dict[str, Any]) -> cfgmod.PipelineConfig:
        """The config file and overrides, the space's fixed values, then `params`."""
        config = load_task_config(self.pipeline, self.config_file, self.overrides)
        cfgmod.set_values(config, {**self.space.fixed_values(), **params})
        return config


@dataclasses.dataclass
class TuneResult:
    parent_run_id: str
    metric: str
    direction: str
    trials: list[Trial]
    best: Trial
    recipe: Path


class TrialReporter(keras.callbacks.Callback):
    """Reports the tuned metric of each epoch to the Optuna trial (step: the epoch, from 1)
    and stops training when the pruner says the trial is not worth finishing."""

    def __init__(self, trial, metric: str, prune: bool):
        super().__init__()
        self.trial = trial
        self.metric = metric
        self.prune = prune
        self.values: dict[int, float] = {}
        self.keys: set[str] = set()  # every epoch-log name seen, for a clear error
        self.pruned_after: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        self.keys.update(logs)
        if self.metric not in logs:  # a task that measures only every few epochs
            return
        step = epoch + 1
        self.values[step] = value = float(logs[self.metric])
        self.trial.report(value, step)
        if self.prune and self.trial.should_prune():
            self.pruned_after = step
            self.model.stop_training = True
            print(f"[tune] trial {self.trial.number} pruned after epoch {step}", flush=True)


def tune(
    pipeline: str,
    space_file: str | Path,
    trials: int,
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    data_dir: str | Path | None = None,
    workdir: str | Path = "runs",
    name: str = "",
    out: str | Path | None = None,
) -> TuneResult:
    """Run `trials` trials of `pipeline` over the space in `space_file`, starting from the
    config file and overrides; write the best config as a recipe (default:
    WORKDIR/tune/PIPELINE-NAME.yaml)."""
    from pipelines.core.tracking import Tracker, git_commit

    optuna = require_optuna()
    if trials < 1:
        raise cfgmod.ConfigError(f"--trials: expected at least 1, got {trials}")
    config = load_task_config(pipeline, config_file, list(overrides))
    space = load_space(space_file, get_task_class(pipeline), config)
    workdir = Path(workdir).resolve()
    name = name or config.run_name or pipeline
    parent_name = f"tune-{name}"
    recipe = Path(out) if out else workdir / "tune" / f"{pipeline}-{name}.yaml"

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the trials print their own lines
    study = optuna.create_study(
        study_name=parent_name,
        direction=space.direction,
        sampler=optuna.samplers.TPESampler(seed=config.train.seed),
        pruner=space.pruner(),
    )
    state_dir = run_dir_for(workdir, pipeline, parent_name)
    shutil.rmtree(state_dir, ignore_errors=True)  # a tune starts afresh, never resumes
    tracker = Tracker(workdir, pipeline)
    parent_id = tracker.start(parent_name, state_dir)
    setup = TuneSetup(
        pipeline, config_file, list(overrides), data_dir, workdir, space, parent_name, tracker
    )
    try:
        tracker.set_tags(
            {
                "pipeline": pipeline,
                "git_commit": git_commit(),
                "tune.metric": space.metric,
                "tune.direction": space.direction,
                TUNE_TRIALS_TAG: str(trials),
            }
        )
        tracker.log_artifact(space.path, "tune")
        done = [run_trial(study, setup) for _ in range(trials)]
        complete = [t for t in done if t.state == COMPLETE]
        if not complete:
            raise RuntimeError(
                f"no trial of {parent_name} completed ({', '.join(t.state for t in done)})"
            )
        best_value = (min if space.direction == "minimize" else max)(t.value for t in complete)
        best = next(t for t in complete if t.value == best_value)
        best_config = setup.config_with(best.params)
        _write_recipe(best_config, recipe, _recipe_header(pipeline, parent_name, space, best))
        tracker.log_params(cfgmod.flatten(cfgmod.to_dict(best_config)))
        tracker.log_metrics(
            {
                f"best_{space.metric}": best.value,
                "trials_complete": len(complete),
                "trials_pruned": sum(t.state == PRUNED for t in done),
            },
            step=0,
        )
        tracker.set_tags(
            {
                "tune.best_trial": str(best.number),
                "tune.best_run_id": best.run_id,
                "tune.best_params": json.dumps(best.params),
                "tune.recipe": str(recipe),
            }
        )
        tracker.log_artifact(recipe, "tune")
    except BaseException:
        tracker.finish(state_dir, status="FAILED")
        raise
    tracker.finish(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)
    return TuneResult(parent_id, space.metric, space.direction, done, best, recipe)


def run_trial(study, setup: TuneSetup) -> Trial:
    """Ask Optuna for a trial, run it nested under the tune's run and tell Optuna how it
    ended."""
    from optuna.trial import TrialState

    space, parent = setup.space, setup.tracker
    trial = study.ask(space.distributions)
    run_name = f"{setup.name}-trial-{trial.number}"
    config = setup.config_with(trial.params)
    config.run_name = run_name
    config.export.enabled = False
    # A trial of an earlier tune cut off under this name must not be resumed under this one.
    shutil.rmtree(run_dir_for(setup.workdir, setup.pipeline, run_name), ignore_errors=True)
    values = ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items())
    print(f"[tune] trial {trial.number}: {values}", flush=True)
    reporter = TrialReporter(trial, space.metric, space.prune)
    try:
        result = run_pipeline(
            setup.pipeline,
            config,
            setup.data_dir,
            setup.workdir,
            callbacks=[reporter],
            parent_run_id=parent.run_id,
        )
    except BaseException:
        study.tell(trial, state=TrialState.FAIL)
        raise
    if not reporter.values:
        study.tell(trial, state=TrialState.FAIL)
        raise cfgmod.ConfigError(
            f"{space.path}: metric '{space.metric}' is not in the epoch logs of trial "
            f"{trial.number} (they have: {', '.join(sorted(reporter.keys))})"
        )
    finite = [v for v in reporter.values.values() if math.isfinite(v)]
    value = (min if space.direction == "minimize" else max)(finite) if finite else math.nan
    if reporter.pruned_after is not None:
        state = PRUNED
        study.tell(trial, state=TrialState.PRUNED)
    elif math.isfinite(value):
        state = COMPLETE
        study.tell(trial, value)
    else:  # diverged from the first epoch: Optuna takes no NaN
        state = FAILED
        study.tell(trial, state=TrialState.FAIL)
    tracked = parent.of_run(result.run_id)
    tracked.set_tags({TRIAL_TAG: str(trial.number), TRIAL_STATE_TAG: state})
    if math.isfinite(value):
        tracked.log_metrics({f"best_{space.metric}": value}, step=0)
    print(f"[tune] trial {trial.number} {state}: {space.metric}={value:.4f}", flush=True)
    return Trial(
        trial.number, result.run_id, run_name, state, value, result.epochs_run, trial.params
    )


def _recipe_header(pipeline: str, parent_name: str, space: SearchSpace, best: Trial) -> str:
    values = ", ".join(f"{k}={_short(v)}" for k, v in best.params.items())
    return (
        f"# tfpipe tune {pipeline} ({parent_name}): the best trial, {best.number} "
        f"(run {best.run_id}), {space.metric}={best.value:.4f}\n"
        f"# tuned: {values}\n"
        f"# train with: tfpipe run {pipeline} --config THIS_FILE\n"
    )


def _write_recipe(config: cfgmod.PipelineConfig, path: Path, header: str) -> None:
    """The full config as YAML under `header`, written whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(header + cfgmod.dump_yaml(config), encoding="utf-8")
    os.replace(tmp, path)


def format_trials(result: TuneResult) -> str:
    """One row per trial: number, run, state, the tuned metric, epochs, the params."""
    from pipelines.core.compare import text_table

    keys = list(dict.fromkeys(k for t in result.trials for k in t.params))
    rows = [["trial", "run", "state", result.metric, "epochs", *keys]]
    for t in result.trials:
        best = " *" if t is result.best else ""
        value = "-" if t.value is None else f"{t.value:.4f}"
        rows.append(
            [
                f"{t.number}{best}",
                t.run_name,
                t.state,
                value,
                str(t.epochs),
                *(_short(t.params.get(k, "-")) for k in keys),
            ]
        )
    return text_table(rows, 3)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def main(args: argparse.Namespace) -> int:
    """`tfpipe tune`: run the trials, print them and where the recipe is."""
    result = tune(
        args.pipeline,
        args.space,
        args.trials,
        config_file=args.config,
        overrides=args.set or [],
        data_dir=args.data_dir,
        workdir=args.workdir,
        name=args.name or "",
        out=args.out,
    )
    print(format_trials(result))
    print(
        f"best: trial {result.best.number}, {result.metric}={result.best.value:.4f} "
        f"(run {result.best.run_id}; tune run {result.parent_run_id})"
    )
    print(f"recipe: {result.recipe} (tfpipe run {args.pipeline} --config {result.recipe})")
    return 0
