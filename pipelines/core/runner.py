"""The one runner every pipeline goes through, in four steps that `run_pipeline` calls in
order:

1. `set_up`: seeds, precision, strategy, the MLflow run (new or resumed), the task's data.
2. `fit`: datasets, model and optimizer under the strategy, callbacks, `Model.fit`, resumed
   exactly from the last checkpoint if the run was cut off (`pipelines.core.resume`).
3. `evaluate_and_log`: test metrics, training curves and the task's plots into MLflow.
4. `export`: the release (`pipelines.core.publish`): the gate on the test metrics, a new
   SavedModel version with every serving signature and warm-up requests, the MLflow Model,
   its registered version and TF Serving's `models.config`.

Between 2 and 3, the task calibrates what its export needs from the trained model (an
anomaly threshold) and `keep_model` stores the trained model (weights, config, assets) with the
run, so `tfpipe export` can write new versions later without training
(`pipelines.core.reexport`). Tasks (`pipelines.core.task.Task`) supply only what is their
own.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipelines.core import config as cfgmod
from pipelines.core.precision import (
    global_policy,
    in_serving_precision,
    serving_precision,
    setup_precision,
)
from pipelines.core.registry import get_task_class
from pipelines.core.run_layout import (
    CHECKPOINT_DIR,
    SAVEDMODEL_ARTIFACT,
    resolve_data_dir,
    run_dir_for,
)

log = logging.getLogger(__name__)


@dataclasses.dataclass
class RunResult:
    run_id: str
    tracking_uri: str
    export_dir: Path | None
    test_metrics: dict[str, float]
    train_seconds: float
    epochs_run: int
    model_dir: Path | None = None
    train_examples_per_second: float | None = None
    task: Any = None  # the prepared task, its data read (benchmarks reuse it)
    gate: Any = None  # pipelines.core.gate.GateResult when export.gate is set


@dataclasses.dataclass
class RunContext:
    """What the steps of one run share."""

    pipeline: str
    config: cfgmod.PipelineConfig
    task: Any  # pipelines.core.task.Task
    workdir: Path
    data_dir: Path
    run_dir: Path
    strategy: Any  # tf.distribute.Strategy
    tracker: Any  # pipelines.core.tracking.Tracker, or a NullTracker off the chief
    worker: Any = None  # pipelines.core.multiworker.Worker under multi-worker training

    @property
    def is_chief(self) -> bool:
        """Whether this process tracks, keeps checkpoints and exports (one process: yes)."""
        return self.worker is None or self.worker.is_chief


@dataclasses.dataclass
class Fitted:
    """A trained model and how its training went."""

    model: Any  # keras.Model
    train_seconds: float
    epochs_run: int
    epoch_keys: set[str]
    examples_per_second: float | None


def load_task_config(
    pipeline: str, config_file: str | Path | None, overrides: list[str] | tuple[str, ...] = ()
) -> Any:
    """`pipeline`'s typed config: defaults, the YAML file, then the overrides."""
    config = cfgmod.load_config(get_task_class(pipeline).config_class, config_file, overrides)
    if config.pipeline and config.pipeline != pipeline:
        raise cfgmod.ConfigError(
            f"{config_file or 'pipeline'}: this config is for the "
            f"'{config.pipeline}' pipeline, not '{pipeline}'"
        )
    config.pipeline = pipeline
    return config


@global_policy()  # the caller's dtype policy again after the run's own
def run_pipeline(
    pipeline: str,
    config: cfgmod.PipelineConfig,
    data_dir: str | Path | None = None,
    workdir: str | Path = "runs",
    *,
    callbacks: Sequence[Any] = (),
    parent_run_id: str | None = None,
) -> RunResult:
    """Train, evaluate, export and track one pipeline run; resume it if it was cut off.

    `callbacks`: Keras callbacks of the caller's, run each epoch after the task's (which
    see the task's `val_*` metrics); `parent_run_id`: the MLflow run to nest this run under
    (a tune's trials, `pipelines.core.tune`)."""
    ctx = set_up(pipeline, config, data_dir, workdir, parent_run_id)
    try:
        fitted = fit(ctx, callbacks)
        if not ctx.is_chief:  # the chief evaluates, keeps and exports the same weights
            shutil.rmtree(ctx.run_dir, ignore_errors=True)
            return RunResult(
                None,
                ctx.tracker.uri,
                None,
                {},
                fitted.train_seconds,
                fitted.epochs_run,
                None,
                fitted.examples_per_second,
                ctx.task,
            )
        ctx.task.calibrate(fitted.model)
        model_dir = keep_model(ctx, fitted.model)
        test_metrics = evaluate_and_log(ctx, fitted)
        published = export(ctx, fitted.model) if config.export.enabled else None
    except BaseException:
        ctx.tracker.finish(ctx.run_dir, status="FAILED")
        if not ctx.is_chief:
            shutil.rmtree(ctx.run_dir, ignore_errors=True)
        raise
    ctx.tracker.finish(ctx.run_dir)
    shutil.rmtree(ctx.run_dir / CHECKPOINT_DIR, ignore_errors=True)
    return RunResult(
        ctx.tracker.run_id,
        ctx.tracker.uri,
        published.export_dir if published else None,
        test_metrics,
        fitted.train_seconds,
        fitted.epochs_run,
        model_dir,
        fitted.examples_per_second,
        ctx.task,
        published.gate if published else None,
    )


# -- 1. set up ----------------------------------------------------------------------------
def set_up(
    pipeline: str,
    config: cfgmod.PipelineConfig,
    data_dir: str | Path | None,
    workdir: str | Path,
    parent_run_id: str | None = None,
) -> RunContext:
    """Seeds, precision and strategy; the MLflow run (resumed if this run name has an
    unfinished one); the task with its data read and its params and tags logged."""
    import keras
    import tensorflow as tf

    from pipelines.core.multiworker import NullTracker, worker_of
    from pipelines.core.publish import check_release
    from pipelines.core.strategy import make_strategy
    from pipelines.core.tracking import Tracker, data_fingerprint, git_commit

    check_release(config.export)
    # Layer names as in a fresh process (Keras numbers the repeats of a name per process),
    # so a kept model's weight paths match whichever run of a process reads them.
    keras.backend.clear_session()
    task_cls = get_task_class(pipeline)
    workdir = Path(workdir).resolve()
    data_path = resolve_data_dir(data_dir)
    tc = config.train
    strategy = make_strategy(tc.strategy, tc.cpu_replicas)
    worker = worker_of(strategy)
    run_dir = run_dir_for(workdir, pipeline, config.run_name or pipeline)
    if worker is not None and not worker.is_chief:
        # Its own checkpoints and state, removed at the end; it resumes from the chief's.
        run_dir = Path(tempfile.mkdtemp(prefix=f"tfpipe-worker{worker.index}-"))
    run_dir.mkdir(parents=True, exist_ok=True)

    keras.utils.set_random_seed(tc.seed)
    if tc.deterministic:
        tf.config.experimental.enable_op_determinism()
    setup_precision(tc.mixed_precision)

    kind = "one device" if strategy is tf.distribute.get_strategy() else type(strategy).__name__
    where = f", worker {worker.index} of {worker.count}" if worker else ""
    print(f"[{pipeline}] {kind}, {strategy.num_replicas_in_sync} replica(s){where}", flush=True)
    tracker = Tracker(workdir, pipeline) if worker is None or worker.is_chief else NullTracker()
    tracker.start(config.run_name or pipeline, run_dir, parent_run_id)
    try:
        task = task_cls(config, data_path)
        task.check_config()
        task.prepare(run_dir)
        config_file = run_dir / "config.yaml"
        config_file.write_text(cfgmod.dump_yaml(config), encoding="utf-8")
        tracker.set_tags(
            {
                "pipeline": pipeline,
                "git_commit": git_commit(),
                "data_fingerprint": data_fingerprint(task.data_files()),
                "data_dir": str(data_path),
                "replicas": str(strategy.num_replicas_in_sync),
                "strategy": type(strategy).__name__,
            }
        )
        tracker.log_params(cfgmod.flatten(cfgmod.to_dict(config)))
        tracker.log_artifact(config_file)
    except BaseException:
        tracker.finish(run_dir, status="FAILED")
        raise
    return RunContext(
        pipeline, config, task, workdir, data_path, run_dir, strategy, tracker, worker
    )


# -- 2. fit -------------------------------------------------------------------------------
def fit(ctx: RunContext, extra_callbacks: Sequence[Any] = ()) -> Fitted:
    """Train under the strategy with per-epoch checkpoints; resume from the last one (or
    begin from an earlier run's weights, `train.init_from`)."""
    import keras

    from pipelines.core.callbacks import (
        LearningRateLogger,
        ResumableEarlyStopping,
        ResumableSwapEMAWeights,
        StepTimer,
        TaskMetrics,
        TrainingClock,
    )
    from pipelines.core.multiworker import fit_multiworker, per_worker_steps, weights_digest
    from pipelines.core.resume import TrainingCheckpoint, clock_file, restore_training
    from pipelines.core.schedules import build_optimizer, build_schedule, time_budget
    from pipelines.core.strategy import scaled
    from pipelines.core.tracking import MlflowEpochLogger
    from pipelines.core.warm_start import warm_start

    tc, task, strategy = ctx.config.train, ctx.task, ctx.strategy
    replicas = strategy.num_replicas_in_sync
    global_batch, lr = scaled(tc.batch_size, tc.learning_rate, replicas, tc.scale_lr_with_replicas)
    if ctx.worker is None:
        train_ds, val_ds, steps_per_epoch = training_data(task, global_batch, replicas)
    else:  # every worker reads per-replica batches and takes its share of them
        train_ds, val_ds, steps = training_data(task, tc.batch_size, 1)
        steps_per_epoch = per_worker_steps(steps, replicas)
    checkpoint_dir = ctx.run_dir / CHECKPOINT_DIR
    # Workers other than the chief resume from the chief's checkpoint (a shared workdir).
    resume_from = run_dir_for(ctx.workdir, ctx.pipeline, ctx.config.run_name or ctx.pipeline)

    with strategy.scope():
        model = task.build_model()
        schedule = build_schedule(tc.schedule, lr, steps_per_epoch * tc.epochs)
        budget = time_budget(schedule)
        if budget is not None and tc.max_minutes <= 0:
            raise cfgmod.ConfigError(
                f"train.schedule.name={tc.schedule.name} needs a time budget: set train.max_minutes"
            )
        optimizer = build_optimizer(
            tc.optimizer,
            schedule,
            weight_decay=tc.weight_decay,
            momentum=tc.momentum,
            clipnorm=tc.clipnorm,
            ema=tc.ema,
        )
        model.compile(
            optimizer=optimizer,
            jit_compile=tc.jit_compile,
            steps_per_execution=tc.steps_per_execution,
            **task.compile_args(model),
        )
        build_training_state(model, train_ds.element_spec)
        if tc.init_from:  # a checkpoint of this run, restored below, wins over it
            source = warm_start(task, model, tc.init_from, ctx.pipeline, ctx.workdir)
            ctx.tracker.set_tags({"init_from": source})

        monitor = tc.monitor or task.default_monitor
        if val_ds is None and monitor.startswith("val_"):
            monitor = monitor[4:]
        ema_swap = ResumableSwapEMAWeights() if tc.ema > 0 else None
        early_stopping = ResumableEarlyStopping(
            monitor=monitor,
            mode="min" if minimizes(task, monitor) else "max",
            patience=tc.early_stopping_patience or tc.epochs + 1,
            restore_best_weights=True,
            verbose=1,
        )
        clock = TrainingClock(
            tc.max_minutes,
            budget.budget_used if budget else None,
            heartbeat=clock_file(checkpoint_dir),
        )
        initial_epoch = restore_training(
            resume_from / CHECKPOINT_DIR, model, clock, early_stopping, ema_swap
        )

    ctx.tracker.log_metrics({"params": model.count_params()})
    tracking_logger = MlflowEpochLogger(ctx.tracker)
    timer = StepTimer(global_batch)
    callbacks: list[keras.callbacks.Callback] = []
    if ema_swap is not None:
        # Evaluate, select and checkpoint the averaged weights at each epoch's end.
        callbacks.append(ema_swap)
    if val_ds is not None:
        callbacks.append(
            TaskMetrics(lambda m: task.evaluate(m, "validation"), every=task.validation_every())
        )
    # The task's callbacks run before the logs are tracked and the checkpoint written.
    callbacks += [
        *task.callbacks(),
        *extra_callbacks,
        LearningRateLogger(),
        tracking_logger,
        early_stopping,
        clock,
        timer,
        TrainingCheckpoint(
            checkpoint_dir, clock, early_stopping, ema_swap, keep=tc.average_last_epochs
        ),
    ]

    epochs = tc.epochs
    if initial_epoch:
        print(
            f"[{ctx.pipeline}] resuming after epoch {initial_epoch} "
            f"({clock.elapsed:.0f} s of training done)",
            flush=True,
        )
    if clock.exhausted():
        epochs = initial_epoch  # no time left: only restore the best weights
    if ctx.worker is None:
        history = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=epochs,
            initial_epoch=min(initial_epoch, epochs),
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            verbose=_verbosity(tc.verbose),
        )
        epochs_run = len(history.epoch)
    else:
        epochs_run = fit_multiworker(
            model,
            strategy,
            train_ds,
            val_ds,
            epochs=epochs,
            initial_epoch=min(initial_epoch, epochs),
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            verbose=_verbosity(tc.verbose) if ctx.is_chief else 0,
        )
        digest = weights_digest(model)
        print(
            f"[{ctx.pipeline}] worker {ctx.worker.index}: final weights sha256 {digest}", flush=True
        )
        ctx.tracker.set_tags({"final_weights_sha256": digest})
    if tc.average_last_epochs > 1:
        _average_last_epochs(ctx, model, checkpoint_dir, val_ds)
    return Fitted(
        model,
        clock.elapsed,
        initial_epoch + epochs_run,
        tracking_logger.keys,
        timer.examples_per_second(),
    )


def _average_last_epochs(ctx: RunContext, model, checkpoint_dir: Path, val_ds) -> None:
    """`train.average_last_epochs`: the mean of the last epochs' weights, kept where its
    validation loss is no worse than that of the weights training ended with (always, with
    no validation data or under a multi-worker strategy, where `evaluate` does not run)."""
    from pipelines.core.resume import average_checkpoints_if_better

    def val_loss() -> float:
        return model.evaluate(val_ds, verbose=0, return_dict=True)["loss"]

    judged = val_ds is not None and ctx.worker is None
    averaged, before, after, kept = average_checkpoints_if_better(
        checkpoint_dir, model, ctx.config.train.average_last_epochs, val_loss if judged else None
    )
    tags = {"averaged_epochs": ",".join(map(str, averaged)) if kept else ""}
    verdict = ""
    if judged:
        verdict = f": val_loss {after:.4f} against {before:.4f}, " + (
            "kept" if kept else "not kept (worse): the final weights stay"
        )
        tags.update({"average.val_loss": f"{after:.4f}", "average.final_val_loss": f"{before:.4f}"})
    print(f"[{ctx.pipeline}] weights averaged over epochs {averaged}{verdict}", flush=True)
    ctx.tracker.set_tags(tags)


def minimizes(task, metric: str) -> bool:
    """Whether lower values of `metric` (a Keras log name) are better for `task`: losses
    and the task's `lower_is_better` metrics."""
    return "loss" in metric or metric.removeprefix("val_") in task.lower_is_better


def build_training_state(model, element_spec) -> None:
    """Make the compiled metrics', loss's and optimizer's variables before `fit`, as Keras
    does only under an explicit strategy: otherwise they are made in the first trace of
    the training step, and a tf.function that made variables traces the whole step a
    second time (5 to 40 s of every run here). Symbolic tensors stand in for a batch."""
    try:
        model._symbolic_build(data_batch=element_spec)
    except Exception as exc:  # inputs Keras cannot stand in for: it builds while tracing
        log.debug("building metrics and optimizer ahead of fit failed: %s", exc)
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def training_data(task, global_batch: int, replicas: int):
    """(train stream, validation set, steps per epoch) of `task` for `fit`.

    One training iterator for the whole run (a repeated stream) and a validation set read
    without tf.data's autotuning: Keras drops each epoch's iterators at the next epoch's
    end, and tearing one down waited on its autotuning thread, 5 to 20 idle seconds an
    epoch on a 2-core CPU. With `data.service` the training stream comes from tf.data
    service workers (validation stays here)."""
    from pipelines.core.data_service import on_data_service

    train_ds, val_ds = task.datasets(global_batch)
    if replicas > 1:
        # A last partial batch smaller than the replica count leaves a replica with an
        # empty batch, which tf.distribute cannot sum: drop those few examples.
        train_ds, val_ds = (_at_least(d, replicas) for d in (train_ds, val_ds))
    steps = int(train_ds.cardinality())
    if steps < 0:
        # Bucketed data: the batch count varies a little with each shuffle. Count one
        # pass (filling the cache) and train on a repeated stream of that many steps.
        steps = sum(1 for _ in train_ds)
    if val_ds is not None:
        val_ds = _without_autotune(val_ds)
    train_ds = on_data_service(train_ds.repeat(), task.config.data, task.name)
    return train_ds, val_ds, max(1, steps)


def keep_model(ctx: RunContext, model) -> Path:
    """Store the trained model with the run (state folder and MLflow artifact `model/`)."""
    from pipelines.core.trained_model import ARTIFACT_PATH, save_trained_model

    folder = ctx.run_dir / ARTIFACT_PATH
    shutil.rmtree(folder, ignore_errors=True)
    save_trained_model(ctx.task, model, ctx.config, folder, ctx.tracker.run_id)
    ctx.tracker.log_artifacts(folder, ARTIFACT_PATH)
    return folder


# -- 3. evaluate and log ------------------------------------------------------------------
def evaluate_and_log(ctx: RunContext, fitted: Fitted) -> dict[str, float]:
    """Test metrics, training time and speed, training curves and the task's plots."""
    from pipelines.core.plots import training_curves_png

    print(f"[{ctx.pipeline}] evaluating on the test split", flush=True)
    test_metrics = ctx.task.evaluate(fitted.model, "test")
    summary: dict[str, float] = {f"test_{k}": v for k, v in test_metrics.items()}
    summary["train_seconds"] = fitted.train_seconds
    summary["epochs_run"] = fitted.epochs_run
    if fitted.examples_per_second:
        summary["train_examples_per_second"] = fitted.examples_per_second
    ctx.tracker.log_metrics(summary, step=0)
    print(
        f"[{ctx.pipeline}] test: " + ", ".join(f"{k}={v:.4f}" for k, v in test_metrics.items()),
        flush=True,
    )

    plots_dir = ctx.run_dir / "plots"
    curves = ctx.tracker.metric_history(sorted(fitted.epoch_keys))
    if curves:
        ctx.tracker.log_artifact(
            training_curves_png(curves, plots_dir / "training_curves.png"), "plots"
        )
    for png in ctx.task.plots(fitted.model, plots_dir):
        ctx.tracker.log_artifact(png, "plots")
    return test_metrics


# -- 4. export ----------------------------------------------------------------------------
def export(ctx: RunContext, model):
    """Release `model` (`pipelines.core.publish`): the gate, a new SavedModel version with
    every signature the task serves, the MLflow Model, its registration, models.config."""
    from pipelines.core.publish import publish

    print(f"[{ctx.pipeline}] exporting SavedModel", flush=True)
    with in_serving_precision(ctx.task, model, ctx.config) as served:
        return publish(
            ctx.pipeline,
            ctx.task,
            ctx.config,
            lambda: ctx.task.signatures(served),
            ctx.workdir,
            ctx.tracker.run_id,
            ctx.task.warmup_inputs(),
            export_metadata_of(ctx.config, ctx.tracker.run_id),
            artifact_path=SAVEDMODEL_ARTIFACT,
        )


def export_metadata_of(config: cfgmod.PipelineConfig, run_id: str | None) -> dict[str, Any]:
    """Where an export came from, kept beside it: the run, its serving options and the
    Keras policy it computes in."""
    serving = getattr(config, "serving", None)
    return {
        "run_id": run_id,
        "run_name": config.run_name,
        "serving": cfgmod.to_dict(serving) if serving is not None else {},
        "mixed_precision": serving_precision(config),
    }


def _verbosity(value: str) -> int:
    if value == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(value)


def _without_autotune(dataset):
    """`dataset` without tf.data's autotuning thread (see `training_data`)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def _at_least(dataset, rows: int):
    import tensorflow as tf

    if dataset is None:
        return None
    return dataset.filter(lambda *batch: tf.shape(tf.nest.flatten(batch)[0])[0] >= rows)
