"""tfmodels.losses: label smoothing on integer labels."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfmodels.losses import SmoothedSparseCategoricalCrossentropy


def probabilities(rows: int = 6, classes: int = 5) -> np.ndarray:
    return np.random.default_rng(0).dirichlet(np.ones(classes), size=rows).astype("float32")


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_equals_one_hot_crossentropy_with_smoothing(smoothing):
    probs = probabilities()
    labels = np.array([0, 4, 2, 2, 1, 3])
    expected = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)(
        np.eye(5)[labels], probs
    )
    loss = SmoothedSparseCategoricalCrossentropy(smoothing)
    np.testing.assert_allclose(float(loss(labels, probs)), float(expected), rtol=1e-5)
    # Labels of shape (batch, 1), as Keras sometimes passes them.
    np.testing.assert_allclose(float(loss(labels[:, None], probs)), float(expected), rtol=1e-5)


def test_smoothing_changes_the_loss_and_zero_is_plain_crossentropy():
    probs, labels = probabilities(), np.array([0, 4, 2, 2, 1, 3])
    plain = float(keras.losses.SparseCategoricalCrossentropy()(labels, probs))
    assert float(SmoothedSparseCategoricalCrossentropy(0.0)(labels, probs)) == pytest.approx(
        plain, rel=1e-5
    )
    assert abs(float(SmoothedSparseCategoricalCrossentropy(0.2)(labels, probs)) - plain) > 1e-3


def test_from_logits_and_serialisation():
    logits = np.random.default_rng(1).normal(size=(4, 3)).astype("float32")
    labels = np.array([2, 0, 1, 1])
    loss = SmoothedSparseCategoricalCrossentropy(0.1, from_logits=True)
    expected = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(
        np.eye(3)[labels], logits
    )
    np.testing.assert_allclose(float(loss(labels, logits)), float(expected), rtol=1e-5)
    clone = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(clone, SmoothedSparseCategoricalCrossentropy)
    assert clone.label_smoothing == 0.1 and clone.from_logits


def test_rejects_smoothing_out_of_range():
    with pytest.raises(ValueError, match="label_smoothing"):
        SmoothedSparseCategoricalCrossentropy(1.0)


def test_multi_label_crossentropy_sums_sigmoid_crossentropy_over_labels():
    from tfmodels.losses import MultiLabelCrossentropy

    logits = np.random.default_rng(1).normal(size=(4, 6)).astype("float32")
    targets = (np.random.default_rng(2).random((4, 6)) < 0.3).astype("float32")
    probs = 1 / (1 + np.exp(-logits))
    per_row = -(targets * np.log(probs) + (1 - targets) * np.log(1 - probs)).sum(axis=1)
    loss = MultiLabelCrossentropy()
    np.testing.assert_allclose(float(loss(targets, logits)), per_row.mean(), rtol=1e-5)
    # Keras' own binary cross-entropy is the mean over labels: ours is that times labels.
    keras_mean = keras.losses.BinaryCrossentropy(from_logits=True)(targets, logits)
    np.testing.assert_allclose(float(loss(targets, logits)), 6 * float(keras_mean), rtol=1e-5)
