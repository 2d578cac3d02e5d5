"""Keras callbacks the runner adds to every training run.

Those that hold state a resumed run needs (the training clock, early stopping's best
epoch, which weights an EMA swap left in the model) expose it as `state()` and take it
back with `restore(...)`, so `pipelines.core.resume` can save and restore it with the
checkpoint.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np


class TaskMetrics(keras.callbacks.Callback):
    """Adds the task's own validation metrics (e.g. word F1) to the logs as `val_*` every
    `every` epochs (0: never), so early stopping, tracking and the progress bar see them."""

    def __init__(self, evaluate: Callable[[keras.Model], dict[str, float]], every: int = 1):
        super().__init__()
        self.evaluate = evaluate
        self.every = every

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None or self.every <= 0 or (epoch + 1) % self.every:
            return
        metrics = self.evaluate(self.model)
        logs.update({f"val_{k}": float(v) for k, v in metrics.items()})
        print("  validation: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()), flush=True)


class LearningRateLogger(keras.callbacks.Callback):
    """Puts the optimizer's current learning rate into each epoch's logs."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["learning_rate"] = current_learning_rate(self.model.optimizer)


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class TrainingClock(keras.callbacks.Callback):
    """Training wall time across every resume of a run. Stops training so that it ends
    within `minutes` (0: no limit) and keeps `budget_used` (a `TimeBudgetSchedule`'s) at
    the share of them spent, so the `*_budget` schedules go on where they were after a
    restart.

    Checked every batch; the stop leaves room for the work that follows an epoch's last
    batch (validation, checkpoint, logging), as long as the longest such tail seen so far.
    Every `beat_seconds` the elapsed time goes to `heartbeat` (a JSON file), so time that
    a kill loses after the last checkpoint still counts against the budget.
    """

    def __init__(
        self,
        minutes: float = 0.0,
        budget_used=None,
        heartbeat: Path | None = None,
        beat_seconds: float = 2.0,
    ):
        super().__init__()
        self.seconds = minutes * 60
        self.budget_used = budget_used
        self.heartbeat = Path(heartbeat) if heartbeat else None
        self.beat_seconds = beat_seconds
        self.elapsed_before = 0.0
        self.tail = 0.0
        self._start: float | None = None
        self._last_batch_end: float | None = None
        self._last_beat = 0.0

    @property
    def elapsed(self) -> float:
        """Seconds of training so far, in this process and every one before it."""
        if self._start is None:
            return self.elapsed_before
        return self.elapsed_before + time.monotonic() - self._start

    def exhausted(self) -> bool:
        """No time left for another batch and the epoch's tail."""
        return bool(self.seconds) and self.elapsed + self.tail >= self.seconds

    def state(self) -> dict[str, float]:
        return {"elapsed_seconds": self.elapsed, "epoch_tail_seconds": self.tail}

    def restore(self, state: dict[str, float]) -> None:
        self.elapsed_before = float(state.get("elapsed_seconds", 0.0))
        self.tail = float(state.get("epoch_tail_seconds", 0.0))
        self._update_budget()

    def _update_budget(self) -> None:
        if self.budget_used is not None and self.seconds:
            self.budget_used.assign(min(1.0, self.elapsed / self.seconds))

    def on_train_begin(self, logs=None) -> None:
        self._start = time.monotonic()
        self._update_budget()

    def on_epoch_begin(self, epoch, logs=None) -> None:
        if self._last_batch_end is not None:
            self.tail = max(self.tail, time.monotonic() - self._last_batch_end)

    def on_train_batch_begin(self, batch, logs=None) -> None:
        self._update_budget()

    def on_train_batch_end(self, batch, logs=None) -> None:
        self._last_batch_end = now = time.monotonic()
        if now - self._last_beat >= self.beat_seconds:
            self._beat()
        if self.exhausted():
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None) -> None:
        self._beat()

    def _beat(self) -> None:
        self._last_beat = time.monotonic()
        if self.heartbeat is not None:
            write_json_atomic(self.heartbeat, {"elapsed_seconds": self.elapsed})

    def on_train_end(self, logs=None) -> None:
        self.elapsed_before = self.elapsed
        self._start = None


class StepTimer(keras.callbacks.Callback):
    """Steady training speed: examples per second from the median step time, leaving
    out each epoch's first steps (compilation, refilled shuffle buffers)."""

    def __init__(self, global_batch_size: int, skip_per_epoch: int = 3):
        super().__init__()
        self.global_batch_size = global_batch_size
        self.skip = skip_per_epoch
        self.steps: list[float] = []
        self._last: float | None = None
        self._seen = 0

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._last, self._seen = None, 0

    def on_train_batch_end(self, batch, logs=None) -> None:
        now = time.perf_counter()
        if self._last is not None and self._seen >= self.skip:
            self.steps.append(now - self._last)
        self._last = now
        self._seen += 1

    def examples_per_second(self) -> float | None:
        if not self.steps:
            return None
        return self.global_batch_size / statistics.median(self.steps)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' `EarlyStopping` whose best score, patience count and best weights can be
    saved and restored, so a resumed run still ends on its best epoch's weights."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._pending: tuple[dict[str, Any], list[np.ndarray] | None] | None = None

    def state(self) -> dict[str, Any]:
        return {
            "best": None if self.best is None else float(self.best),
            "best_epoch": int(self.best_epoch),
            "wait": int(self.wait),
        }

    def improved_at(self, epoch: int) -> bool:
        """Whether `epoch` (0-based) set the best weights."""
        return self.best_weights is not None and self.best_epoch == epoch

    def restore(self, state: dict[str, Any], best_weights: list[np.ndarray] | None) -> None:
        """Applied at the start of the next `fit` (which resets the base class)."""
        self._pending = (state, best_weights)

    def on_train_begin(self, logs=None) -> None:
        super().on_train_begin(logs)
        if self._pending is not None:
            state, weights = self._pending
            self._pending = None
            self.best = state.get("best")
            self.best_epoch = int(state.get("best_epoch", 0))
            self.wait = int(state.get("wait", 0))
            self.best_weights = weights


class ResumableSwapEMAWeights(keras.callbacks.SwapEMAWeights):
    """Keras' `SwapEMAWeights(swap_on_epoch=True)` that says, and can be told after a
    restart, whether the model holds the averaged weights (as it does in a checkpoint
    written at an epoch's end); without that, a resumed run would train on the averages
    and average the raw weights."""

    def __init__(self):
        super().__init__(swap_on_epoch=True)

    @property
    def averages_in_model(self) -> bool:
        return bool(self._ema_weights_in_model)

    def restore(self, averages_in_model: bool) -> None:
        self._ema_weights_in_model = averages_in_model


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON to a temporary file and rename it over `path`: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, path)
