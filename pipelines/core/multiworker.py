"""Multi-worker training (`train.strategy=multiworker`, or `auto` with a TF_CONFIG naming
several workers).

Keras 3's `Model.fit` cannot run under `MultiWorkerMirroredStrategy` (it fails converting
a `PerReplica` batch, keras-team/keras#20585), so `fit_multiworker` is a training loop of
its own that does what `fit` does under a strategy: `strategy.run(model.train_step)` on
batches from `distribute_datasets_from_function` (Keras' `train_step` already divides the
loss by the replica count and its optimizer all-reduces the gradients), validation through
`model.test_step`, and the SAME Keras callbacks, driven through a `CallbackList`. Every
task therefore trains unchanged, custom `train_step`s included.

Every worker runs every callback on the same logs, so their weights and early-stopping
decisions stay equal; stop requests (the time limit: clocks differ per worker) are summed
over the workers at every step and epoch end, so all stop together and no collective
hangs. Only the chief tracks, checkpoints where users look and exports (see
`pipelines.core.runner`); the others get a `NullTracker` and a temporary state folder.

A lost peer makes the collectives fail on the survivors (TF's coordination service
reports the task that stopped sending heartbeats), and a process cannot reuse its
collective runtime after that: `rejoin` re-executes the process with the same arguments,
so it forms the cluster again when the peer is back and resumes from the last checkpoint
in the same MLflow run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

#: Errors a collective raises when a peer died or the cluster was torn down.
PEER_FAILURES = (
    tf.errors.UnavailableError,
    tf.errors.AbortedError,
    tf.errors.DeadlineExceededError,
    tf.errors.CancelledError,
)
#: How many times a worker re-executes itself after a lost peer (counted in its env).
REJOINS_ENV = "TFPIPE_REJOINS"
MAX_REJOINS = 5


@dataclasses.dataclass(frozen=True)
class Worker:
    """This process's place in the cluster."""

    index: int
    count: int

    @property
    def is_chief(self) -> bool:
        return self.index == 0


def worker_of(strategy: tf.distribute.Strategy) -> Worker | None:
    """The worker this process is under a `MultiWorkerMirroredStrategy`, else None."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return None
    resolver = strategy.cluster_resolver
    count = len(resolver.cluster_spec().as_dict().get("worker", [])) or 1
    return Worker(int(resolver.task_id or 0), count)


class NullTracker:
    """What a non-chief worker tracks: nothing (the chief's `Tracker` records the run)."""

    run_id = None
    uri = "(chief only)"
    resumed = False

    def start(self, run_name: str, state_dir: Path, parent_run_id: str | None = None) -> None:
        return None

    def finish(self, state_dir: Path, status: str = "FINISHED") -> None:
        return None

    def log_params(self, params: Mapping[str, Any]) -> None:
        return None

    def set_tags(self, tags: Mapping[str, str]) -> None:
        return None

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        return None

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        return None

    def log_artifacts(self, path: Path, artifact_path: str | None = None) -> None:
        return None

    def metric_history(self, keys) -> dict[str, list[float]]:
        return {}


def weights_digest(model: keras.Model) -> str:
    """sha256 of every weight's bytes: equal on every worker after a correct run."""
    digest = hashlib.sha256()
    for value in model.get_weights():
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def rejoin(error: BaseException) -> None:
    """Re-execute this worker (same argv and environment) after a lost peer, so it forms
    the cluster anew and resumes from the last checkpoint; gives up after MAX_REJOINS."""
    done = int(os.environ.get(REJOINS_ENV, "0"))
    if done >= MAX_REJOINS:
        raise RuntimeError(
            f"multi-worker training lost a peer {done + 1} times; giving up"
        ) from error
    os.environ[REJOINS_ENV] = str(done + 1)
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    print(
        f"[multiworker] lost a peer ({type(error).__name__}: {first_line[:200]}); "
        f"rejoining the cluster (attempt {done + 1} of {MAX_REJOINS})",
        flush=True,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    # The command line as given (`-m pipelines` included), not `sys.argv`'s script path.
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def fit_multiworker(
    model: keras.Model,
    strategy: tf.distribute.Strategy,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset | None,
    *,
    epochs: int,
    initial_epoch: int,
    steps_per_epoch: int,
    callbacks: list[keras.callbacks.Callback],
    verbose: int,
) -> int:
    """Train `model` (compiled in `strategy`'s scope) like `Model.fit`; returns the number
    of epochs run.

    `train_ds` is a repeated stream of per-replica batches, the same on every worker; each
    worker takes every n-th of them (n workers), so one step sees n x replicas-per-worker
    of them: the global batch.
    `val_ds` is the whole validation set, run on every worker (same logs everywhere)."""
    local = strategy.experimental_local_results

    def shard(context: tf.distribute.InputContext) -> tf.data.Dataset:
        return train_ds.shard(context.num_input_pipelines, context.input_pipeline_id)

    with strategy.scope():
        first = next(iter(train_ds.take(1)))
        model._symbolic_build(data_batch=first)  # metrics and optimizer, as fit does
    iterator = iter(strategy.distribute_datasets_from_function(shard))

    @tf.function(reduce_retracing=True)
    def train_step(iterator, stop):
        def replica_step(batch):
            logs = model.train_step(batch)
            flags = tf.distribute.get_replica_context().all_reduce("SUM", tf.identity(stop))
            return logs, flags

        logs, flags = strategy.run(replica_step, args=(next(iterator),))
        return tf.nest.map_structure(lambda v: local(v)[0], (logs, flags))

    @tf.function(reduce_retracing=True)
    def test_step(batch):
        return tf.nest.map_structure(
            lambda v: local(v)[0], strategy.run(model.test_step, args=(batch,))
        )

    @tf.function
    def agree(stop):
        flags = strategy.run(
            lambda s: tf.distribute.get_replica_context().all_reduce("SUM", tf.identity(s)),
            args=(stop,),
        )
        return local(flags)[0]

    def any_worker_stops() -> bool:
        return float(agree(tf.constant(float(model.stop_training)))) > 0

    # Every worker must start at the same epoch (the chief's checkpoint) and train as many,
    # or the first collective would hang: check it once, with a clear error.
    plan = np.array([initial_epoch, epochs], dtype="float32")
    summed = agree(tf.constant(plan)).numpy()
    if not np.array_equal(summed, plan * strategy.num_replicas_in_sync):
        raise RuntimeError(
            f"workers disagree on where to resume (this one: epoch {initial_epoch} of "
            f"{epochs}); every worker must see the chief's checkpoint folder: share the "
            "workdir between them"
        )
    callback_list = keras.callbacks.CallbackList(
        callbacks,
        add_history=True,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=epochs,
        steps=steps_per_epoch,
    )
    model.stop_training = False
    callback_list.on_train_begin()
    epochs_run = 0
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        for step in range(steps_per_epoch):
            callback_list.on_train_batch_begin(step)
            logs, flags = train_step(iterator, tf.constant(float(model.stop_training)))
            callback_list.on_train_batch_end(step, logs)
            if float(flags) > 0:
                model.stop_training = True
                break
        epoch_logs = _numbers(model.get_metrics_result())
        if val_ds is not None:
            epoch_logs.update(
                {f"val_{k}": v for k, v in _evaluate(model, val_ds, test_step).items()}
            )
        callback_list.on_epoch_end(epoch, epoch_logs)
        epochs_run += 1
        model.stop_training = any_worker_stops()
        if model.stop_training:
            break
    callback_list.on_train_end(logs=None)
    return epochs_run


def per_worker_steps(steps: int, replicas: int) -> int:
    """Steps per epoch when each of `replicas` replicas (over all workers) takes its share
    of a pass of `steps` per-replica batches (at least one)."""
    return max(1, steps // replicas)


def _evaluate(
    model: keras.Model, dataset: tf.data.Dataset, test_step: Callable
) -> dict[str, float]:
    model.reset_metrics()
    for batch in dataset:
        test_step(batch)
    return _numbers(model.get_metrics_result())


def _numbers(logs: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(keras.ops.convert_to_numpy(v)) for k, v in logs.items()}
