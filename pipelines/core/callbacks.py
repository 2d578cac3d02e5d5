"""Keras callbacks the runner adds to every training run."""

from __future__ import annotations

import time
from collections.abc import Callable

import keras


class TaskMetrics(keras.callbacks.Callback):
    """Adds the task's own validation metrics (e.g. word F1) to each epoch's logs as `val_*`,
    so early stopping, tracking and the progress bar all see them."""

    def __init__(self, evaluate: Callable[[keras.Model], dict[str, float]]):
        super().__init__()
        self.evaluate = evaluate

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        metrics = self.evaluate(self.model)
        logs.update({f"val_{k}": float(v) for k, v in metrics.items()})
        print("  validation: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()),
              flush=True)


class LearningRateLogger(keras.callbacks.Callback):
    """Puts the optimizer's current learning rate into each epoch's logs."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            lr = self.model.optimizer.learning_rate
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(lr))


class TimeLimit(keras.callbacks.Callback):
    """Stops training so that it ends within `minutes` of wall time, and keeps
    `budget_used` (a `schedules.TimeBudgetDecay`'s) at the share of them spent.

    Checked every batch; the stop leaves room for the work that follows an epoch's last
    batch (validation, checkpoint, logging), as long as the longest such tail seen so far.
    """

    def __init__(self, minutes: float, budget_used=None):
        super().__init__()
        self.seconds = minutes * 60
        self.start = 0.0
        self.budget_used = budget_used
        self.tail = 0.0
        self._last_batch_end: float | None = None

    def on_train_begin(self, logs=None) -> None:
        self.start = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None) -> None:
        if self._last_batch_end is not None:
            self.tail = max(self.tail, time.monotonic() - self._last_batch_end)

    def on_train_batch_begin(self, batch, logs=None) -> None:
        if self.budget_used is not None and self.seconds:
            self.budget_used.assign(min(1.0, (time.monotonic() - self.start) / self.seconds))

    def on_train_batch_end(self, batch, logs=None) -> None:
        self._last_batch_end = now = time.monotonic()
        if self.seconds and now - self.start + self.tail > self.seconds:
            self.model.stop_training = True
