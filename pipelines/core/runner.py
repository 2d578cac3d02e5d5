"""The one runner every pipeline goes through: prepare data, train under a tf.distribute
strategy with per-epoch checkpoints, evaluate on the test split, export, and track it all
in MLflow. Tasks (`pipelines.core.task.Task`) supply only what is their own."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from pipelines.core import config as cfgmod
from pipelines.core.registry import get_task_class

log = logging.getLogger(__name__)

BUNDLED_DATA = Path(__file__).resolve().parent.parent / "data"


@dataclasses.dataclass
class RunResult:
    run_id: str
    tracking_uri: str
    export_dir: Path | None
    test_metrics: dict[str, float]
    train_seconds: float
    epochs_run: int


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """`--data-dir`, else `TFPIPE_DATA_DIR`, else the sample data bundled under `data/`."""
    chosen = data_dir or os.environ.get("TFPIPE_DATA_DIR") or BUNDLED_DATA
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"data directory {path} does not exist")
    return path


def run_dir_for(workdir: Path, pipeline: str, run_name: str) -> Path:
    """Per-run state: resolved config, checkpoints, MLflow run id, plots."""
    return Path(workdir) / "state" / pipeline / run_name


def setup_precision(policy: str) -> None:
    """Set Keras' global dtype policy; `auto`: float16 on a GPU, bfloat16 on CPUs that have it."""
    import keras
    import tensorflow as tf

    if policy == "auto":
        if tf.config.list_physical_devices("GPU"):
            policy = "mixed_float16"
        else:
            flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
            policy = "mixed_bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "none"
    keras.mixed_precision.set_global_policy("float32" if policy == "none" else policy)


def _verbosity(value: str) -> int:
    if value == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(value)


def run_pipeline(
    pipeline: str,
    config: cfgmod.PipelineConfig,
    data_dir: str | Path | None = None,
    workdir: str | Path = "runs",
) -> RunResult:
    """Train, evaluate, export and track one pipeline run; resume it if it was cut off."""
    import keras
    import tensorflow as tf

    from pipelines.core.callbacks import LearningRateLogger, TaskMetrics, TimeLimit
    from pipelines.core.export import export_version
    from pipelines.core.plots import training_curves_png
    from pipelines.core.schedules import build_optimizer, build_schedule, time_budget
    from pipelines.core.strategy import make_strategy, scaled
    from pipelines.core.tracking import MlflowEpochLogger, Tracker, data_fingerprint, git_commit

    task_cls = get_task_class(pipeline)
    workdir = Path(workdir).resolve()
    data_path = resolve_data_dir(data_dir)
    tc = config.train
    run_name = config.run_name or pipeline
    run_dir = run_dir_for(workdir, pipeline, run_name)
    run_dir.mkdir(parents=True, exist_ok=True)

    strategy = make_strategy(tc.strategy, tc.cpu_replicas)
    keras.utils.set_random_seed(tc.seed)
    if tc.deterministic:
        tf.config.experimental.enable_op_determinism()
    setup_precision(tc.mixed_precision)

    tracker = Tracker(workdir, pipeline)
    tracker.start(run_name, run_dir)
    try:
        task = task_cls(config, data_path)
        task.prepare(run_dir)
        config_file = run_dir / "config.yaml"
        config_file.write_text(cfgmod.dump_yaml(config), encoding="utf-8")
        tracker.set_tags({
            "pipeline": pipeline,
            "git_commit": git_commit(),
            "data_fingerprint": data_fingerprint(task.data_files()),
            "data_dir": str(data_path),
            "replicas": str(strategy.num_replicas_in_sync),
            "strategy": type(strategy).__name__,
        })
        tracker.log_params(cfgmod.flatten(cfgmod.to_dict(config)))
        tracker.log_artifact(config_file)
        for path in task.artifacts(run_dir / "artifacts"):
            tracker.log_artifact(path, "vocab")

        replicas = strategy.num_replicas_in_sync
        global_batch, lr = scaled(tc.batch_size, tc.learning_rate, replicas,
                                  tc.scale_lr_with_replicas)
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
        # One training iterator for the whole run, and a validation set read without
        # tf.data's autotuning: Keras drops each epoch's iterators at the next epoch's
        # end, and tearing one down waited on its autotuning thread, 5 to 20 idle
        # seconds an epoch on a 2-core CPU.
        steps_per_epoch = max(1, steps)
        train_ds = train_ds.repeat()
        if val_ds is not None:
            val_ds = _without_autotune(val_ds)
        total_steps = steps_per_epoch * tc.epochs

        with strategy.scope():
            model = task.build_model()
            schedule = build_schedule(tc.schedule, lr, total_steps)
            budget = time_budget(schedule)
            if budget is not None and tc.max_minutes <= 0:
                raise cfgmod.ConfigError(f"train.schedule.name={tc.schedule.name} needs a "
                                         "time budget: set train.max_minutes")
            optimizer = build_optimizer(
                tc.optimizer, schedule,
                weight_decay=tc.weight_decay, momentum=tc.momentum, clipnorm=tc.clipnorm,
                ema=tc.ema,
            )
            model.compile(optimizer=optimizer, jit_compile=tc.jit_compile,
                          steps_per_execution=tc.steps_per_execution, **task.compile_args(model))

        tracker.log_metrics({"params": model.count_params()})
        monitor = tc.monitor or task.default_monitor
        if val_ds is None and monitor.startswith("val_"):
            monitor = monitor[4:]
        tracking_logger = MlflowEpochLogger(tracker)
        callbacks: list[keras.callbacks.Callback] = []
        if tc.ema > 0:
            # Evaluate, select and checkpoint the averaged weights at each epoch's end.
            callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
        if val_ds is not None:
            callbacks.append(TaskMetrics(lambda m: task.evaluate(m, "validation")))
        callbacks += [
            LearningRateLogger(),
            tracking_logger,
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode="min" if "loss" in monitor else "max",
                patience=tc.early_stopping_patience or tc.epochs + 1,
                restore_best_weights=True, verbose=1,
            ),
            keras.callbacks.BackupAndRestore(str(run_dir / "checkpoint"), save_freq="epoch",
                                             delete_checkpoint=False),
        ]
        if tc.max_minutes > 0:
            callbacks.append(TimeLimit(tc.max_minutes, budget.budget_used if budget else None))

        started = time.monotonic()
        history = model.fit(train_ds, validation_data=val_ds, epochs=tc.epochs,
                            steps_per_epoch=steps_per_epoch, callbacks=callbacks,
                            verbose=_verbosity(tc.verbose))
        train_seconds = time.monotonic() - started
        epochs_run = len(history.epoch)

        print(f"[{pipeline}] evaluating on the test split", flush=True)
        test_metrics = task.evaluate(model, "test")
        summary = {f"test_{k}": v for k, v in test_metrics.items()}
        summary["train_seconds"] = train_seconds
        tracker.log_metrics(summary, step=0)
        print(f"[{pipeline}] test: " + ", ".join(f"{k}={v:.4f}" for k, v in test_metrics.items()),
              flush=True)

        plots_dir = run_dir / "plots"
        curves = tracker.metric_history(sorted(tracking_logger.keys))
        if curves:
            tracker.log_artifact(training_curves_png(curves, plots_dir / "training_curves.png"),
                                 "plots")
        for png in task.plots(model, plots_dir):
            tracker.log_artifact(png, "plots")

        export_dir = None
        if config.export.enabled:
            print(f"[{pipeline}] exporting SavedModel", flush=True)
            export_dir = export_version(
                task.serving(model), workdir / "exports", pipeline,
                warmup_inputs=task.warmup_inputs(),
                warmup_count=config.export.warmup_requests,
                serving_base_path=config.export.serving_base_path,
            )
            tracker.set_tags({"export_dir": str(export_dir), "export_version": export_dir.name})
            if config.export.log_to_mlflow:
                tracker.log_artifacts(export_dir, "savedmodel")
            print(f"[{pipeline}] exported {export_dir}", flush=True)
    except BaseException:
        tracker.finish(run_dir, status="FAILED")
        raise
    tracker.finish(run_dir)
    _clear_checkpoint(run_dir / "checkpoint")
    return RunResult(tracker.run_id, tracker.uri, export_dir, test_metrics, train_seconds,
                     epochs_run)


def _without_autotune(dataset):
    """`dataset` without tf.data's autotuning thread (see its use)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def _at_least(dataset, rows: int):
    import tensorflow as tf

    if dataset is None:
        return None
    return dataset.filter(lambda *batch: tf.shape(tf.nest.flatten(batch)[0])[0] >= rows)


def _clear_checkpoint(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def load_task_config(pipeline: str, config_file: str | None, overrides: list[str]) -> Any:
    return cfgmod.load_config(get_task_class(pipeline).config_class, config_file, overrides)
