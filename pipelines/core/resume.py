"""Exact resume: what a killed run needs to go on as if it had not stopped.

Keras' `BackupAndRestore` keeps the weights, the optimizer (and with it the step count the
step-paced schedules read) and the epoch. It does not keep what lives in callbacks and
schedules: the wall time already spent against `train.max_minutes` (and so the progress of
the `*_budget` schedules), early stopping's best score, patience and best weights, or
which weights an EMA swap left in the model. `TrainingCheckpoint` writes all of it at each
epoch's end into a folder of its own, and names that folder in `latest` only once it is
complete, so a kill at any moment leaves one whole checkpoint. `TrainingClock`'s heartbeat
keeps the time between checkpoints, so time that a kill loses still counts.

    checkpoint/latest                     name of the newest complete checkpoint
    checkpoint/epoch-0003/state.json      epoch, clock, early stopping, EMA swap
    checkpoint/epoch-0003/training.weights.h5   model and optimizer variables
    checkpoint/epoch-0003/best_weights.npz      early stopping's best weights so far
    checkpoint/clock.json                 heartbeat: training seconds so far

Only the newest checkpoint is kept, or with `train.average_last_epochs` N the newest N,
whose weights `average_checkpoints` averages when training ends.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from pipelines.core.callbacks import (
    ResumableEarlyStopping,
    ResumableSwapEMAWeights,
    TrainingClock,
)

LATEST = "latest"
STATE = "state.json"
WEIGHTS = "training.weights.h5"
BEST = "best_weights.npz"
CLOCK = "clock.json"


def clock_file(folder: Path) -> Path:
    """Where `TrainingClock` beats for the checkpoint in `folder`."""
    return Path(folder) / CLOCK


class TrainingCheckpoint(keras.callbacks.Callback):
    """Writes the whole training state at each epoch's end (place it last, after the
    callbacks whose state it saves)."""

    def __init__(
        self,
        folder: Path,
        clock: TrainingClock,
        early_stopping: ResumableEarlyStopping | None = None,
        ema_swap: ResumableSwapEMAWeights | None = None,
        keep: int = 1,
    ):
        super().__init__()
        self.folder = Path(folder)
        self.clock = clock
        self.early_stopping = early_stopping
        self.ema_swap = ema_swap
        self.keep = max(keep, 1)  # the newest epochs' checkpoints kept (for averaging)

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch + 1:04d}"
        tmp = self.folder / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        self.model.save_weights(str(tmp / WEIGHTS))
        previous = _latest(self.folder)
        es = self.early_stopping
        if es is not None and es.improved_at(epoch):
            np.savez(tmp / BEST, *es.best_weights)
        elif previous is not None and (previous / BEST).exists():
            _link_or_copy(previous / BEST, tmp / BEST)
        state = {
            "epoch": epoch + 1,
            "clock": self.clock.state(),
            "early_stopping": es.state() if es is not None else None,
            "ema_averages_in_model": bool(self.ema_swap and self.ema_swap.averages_in_model),
        }
        (tmp / STATE).write_text(json.dumps(state, indent=1), encoding="utf-8")
        final = self.folder / name
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        (self.folder / f".{LATEST}.tmp").write_text(name, encoding="utf-8")
        os.replace(self.folder / f".{LATEST}.tmp", self.folder / LATEST)
        kept = set(epoch_checkpoints(self.folder)[-self.keep :]) | {final}
        for old in self.folder.glob("epoch-*"):
            if old not in kept:
                shutil.rmtree(old, ignore_errors=True)


def epoch_checkpoints(folder: Path) -> list[Path]:
    """The complete per-epoch checkpoints in `folder`, oldest first."""
    return sorted(p for p in Path(folder).glob("epoch-*") if (p / STATE).exists())


def average_checkpoints(folder: Path, model: keras.Model, count: int) -> list[int]:
    """Set `model`'s weights to the mean of those in the newest `count` checkpoints of
    `folder` (integer variables, such as seed states, from the newest); returns the epochs
    averaged. Each checkpoint also loads its optimizer state, the newest's last."""
    chosen = epoch_checkpoints(folder)[-count:]
    if not chosen:
        return []
    sums: list[np.ndarray] | None = None
    for path in chosen:
        model.load_weights(str(path / WEIGHTS))
        weights = model.get_weights()
        if sums is None:
            sums = [np.array(w, dtype=np.float64) if _floating(w) else w for w in weights]
        else:
            sums = [s + w if _floating(w) else w for s, w in zip(sums, weights, strict=True)]
    model.set_weights(
        [
            (s / len(chosen)).astype(w.dtype) if _floating(w) else w
            for s, w in zip(sums, weights, strict=True)
        ]
    )
    return [json.loads((p / STATE).read_text(encoding="utf-8"))["epoch"] for p in chosen]


def average_checkpoints_if_better(
    folder: Path, model: keras.Model, count: int, loss: Callable[[], float] | None
) -> tuple[list[int], float | None, float | None, bool]:
    """`average_checkpoints`, kept only where `loss()` (lower is better, e.g. the
    validation loss) of the averaged weights is no worse than of the weights training
    ended with; otherwise those are put back. Averaging helps a model that has settled,
    and hurts one the budget stopped while it was still improving fast. Without `loss`
    the average is always kept. Returns (epochs averaged, loss before, loss averaged,
    whether the average was kept)."""
    if loss is None:
        epochs = average_checkpoints(folder, model, count)
        return epochs, None, None, bool(epochs)
    before_weights = model.get_weights()
    before = float(loss())
    epochs = average_checkpoints(folder, model, count)
    if not epochs:
        return [], before, before, False
    after = float(loss())
    if after > before:
        model.set_weights(before_weights)
        return epochs, before, after, False
    return epochs, before, after, True


def _floating(array: np.ndarray) -> bool:
    return np.issubdtype(np.asarray(array).dtype, np.floating)


def restore_training(
    folder: Path,
    model: keras.Model,
    clock: TrainingClock,
    early_stopping: ResumableEarlyStopping | None = None,
    ema_swap: ResumableSwapEMAWeights | None = None,
) -> int:
    """Load the newest checkpoint in `folder` into `model` (weights and optimizer) and the
    callbacks; returns the number of epochs it had finished (0: nothing to resume).

    Call inside the strategy scope, after `model.compile`."""
    folder = Path(folder)
    heartbeat = _read_json(clock_file(folder)) or {}
    latest = _latest(folder)
    if latest is None:
        clock.restore({"elapsed_seconds": heartbeat.get("elapsed_seconds", 0.0)})
        return 0
    state = json.loads((latest / STATE).read_text(encoding="utf-8"))
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(str(latest / WEIGHTS))
    clock_state = dict(state["clock"])
    clock_state["elapsed_seconds"] = max(
        clock_state["elapsed_seconds"], heartbeat.get("elapsed_seconds", 0.0)
    )
    clock.restore(clock_state)
    if early_stopping is not None and state.get("early_stopping"):
        best = None
        if (latest / BEST).exists():
            with np.load(latest / BEST) as data:
                best = [data[f"arr_{i}"] for i in range(len(data.files))]
        early_stopping.restore(state["early_stopping"], best)
    if ema_swap is not None:
        ema_swap.restore(bool(state.get("ema_averages_in_model")))
    return int(state["epoch"])


def _latest(folder: Path) -> Path | None:
    pointer = folder / LATEST
    if not pointer.exists():
        return None
    path = folder / pointer.read_text(encoding="utf-8").strip()
    return path if (path / STATE).exists() else None


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
