"""`train.average_last_epochs`: the per-epoch checkpoints of the last N epochs are kept and
their weights averaged into the model when training ends."""

from __future__ import annotations

import keras
import numpy as np

from pipelines.core.callbacks import TrainingClock
from pipelines.core.resume import (
    TrainingCheckpoint,
    average_checkpoints,
    average_checkpoints_if_better,
    epoch_checkpoints,
)


class EpochWeights(keras.callbacks.Callback):
    """The model's weights at each epoch's end, as the checkpoint sees them."""

    def __init__(self):
        super().__init__()
        self.weights: list[list[np.ndarray]] = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([np.array(w) for w in self.model.get_weights()])


def test_the_last_epochs_checkpoints_are_kept_and_averaged(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    seen = EpochWeights()
    folder = tmp_path / "checkpoint"
    checkpoint = TrainingCheckpoint(folder, TrainingClock(), keep=3)
    model.fit(x, y, batch_size=16, epochs=5, verbose=0, callbacks=[seen, checkpoint])

    assert [p.name for p in epoch_checkpoints(folder)] == ["epoch-0003", "epoch-0004", "epoch-0005"]
    assert average_checkpoints(folder, model, 3) == [3, 4, 5]
    expected = [np.mean(ws, axis=0) for ws in zip(*seen.weights[2:], strict=True)]
    for got, want in zip(model.get_weights(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert not np.allclose(model.get_weights()[0], seen.weights[-1][0])  # not just the last

    assert average_checkpoints(folder, model, 1) == [5]  # one epoch: its own weights
    np.testing.assert_array_equal(model.get_weights()[0], seen.weights[-1][0])
    assert average_checkpoints(tmp_path / "none", model, 3) == []


def test_without_averaging_only_the_newest_checkpoint_stays(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    folder = tmp_path / "checkpoint"
    x = np.ones((8, 2), "float32")
    model.fit(
        x, x[:, :1], epochs=3, verbose=0, callbacks=[TrainingCheckpoint(folder, TrainingClock())]
    )
    assert [p.name for p in epoch_checkpoints(folder)] == ["epoch-0003"]


def test_an_average_worse_than_the_final_weights_is_not_kept(tmp_path):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    x = np.random.default_rng(1).normal(size=(64, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    folder = tmp_path / "checkpoint"
    checkpoint = TrainingCheckpoint(folder, TrainingClock(), keep=3)
    model.fit(x, y, batch_size=16, epochs=4, verbose=0, callbacks=[checkpoint])
    final = [np.array(w) for w in model.get_weights()]

    def loss() -> float:
        return float(model.evaluate(x, y, verbose=0))

    # Still improving fast: the mean of epochs 2-4 fits worse than epoch 4 alone.
    epochs, before, after, kept = average_checkpoints_if_better(folder, model, 3, loss)
    assert epochs == [2, 3, 4] and after > before and not kept
    for got, want in zip(model.get_weights(), final, strict=True):
        np.testing.assert_array_equal(got, want)

    # Judged by a loss that prefers the average, the average stays.
    epochs, _, _, kept = average_checkpoints_if_better(folder, model, 3, lambda: -loss())
    assert kept and not np.allclose(model.get_weights()[0], final[0])
