"""tfmodels.layers.FusedBatchNormalization computes what Keras' BatchNormalization does."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tfmodels.layers import FusedBatchNormalization


def pair(momentum: float = 0.9):
    rng = np.random.default_rng(0)
    keras_bn = keras.layers.BatchNormalization(momentum=momentum, epsilon=1e-5)
    fused_bn = FusedBatchNormalization(momentum=momentum, epsilon=1e-5)
    for layer in (keras_bn, fused_bn):
        layer.build((None, 6, 5, 4))
    weights = [
        rng.normal(size=4).astype("float32") + 1,
        rng.normal(size=4).astype("float32"),
        rng.normal(size=4).astype("float32"),
        rng.uniform(0.5, 2, 4).astype("float32"),
    ]
    keras_bn.set_weights(weights)
    fused_bn.set_weights(weights)
    return keras_bn, fused_bn


@pytest.mark.parametrize("training", [True, False])
def test_matches_keras_batch_norm(training):
    keras_bn, fused_bn = pair()
    x = np.random.default_rng(1).normal(3, 2, size=(8, 6, 5, 4)).astype("float32")
    expected = keras_bn(x, training=training)
    got = fused_bn(x, training=training)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-4, atol=1e-4)
    # Moving statistics move the same way (the variance within Bessel's n / (n - 1)).
    np.testing.assert_allclose(
        np.asarray(fused_bn.moving_mean), np.asarray(keras_bn.moving_mean), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(fused_bn.moving_variance), np.asarray(keras_bn.moving_variance), rtol=2e-3
    )
    if training:
        assert not np.allclose(np.asarray(fused_bn.moving_mean), pair()[1].get_weights()[2])


def test_bfloat16_inputs_keep_their_dtype_and_gradients_flow():
    import tensorflow as tf

    layer = FusedBatchNormalization(dtype="mixed_bfloat16")
    x = tf.random.normal((4, 3, 3, 2), dtype=tf.bfloat16)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2)
    assert y.dtype == tf.bfloat16
    grads = tape.gradient(loss, [layer.gamma, layer.beta])
    assert all(g is not None and np.isfinite(np.asarray(g)).all() for g in grads)


def test_saves_and_loads_as_keras_file(tmp_path):
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, FusedBatchNormalization(name="bn")(inputs))
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.random.rand(16, 4, 4, 3), np.random.rand(16, 4, 4, 3), epochs=1, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.get_layer("bn"), FusedBatchNormalization)
    x = np.random.rand(2, 4, 4, 3).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-5)


def test_switching_the_kernel_off_runs_keras_own_ops():
    """`fused_batch_norm(False)` (the images pipeline's `model.fused_batch_norm`) builds
    layers whose graph holds Keras' ops instead of FusedBatchNormV3, with the same result."""
    import tensorflow as tf

    from tfmodels.layers import fused_batch_norm

    x = np.random.default_rng(2).normal(size=(4, 6, 5, 4)).astype("float32")
    ops = {}
    for enabled in (True, False):
        with fused_batch_norm(enabled):
            layer = FusedBatchNormalization()
        layer.build(x.shape)
        assert layer.fused is enabled
        graph = (
            tf.function(lambda v, layer=layer: layer(v, training=True))
            .get_concrete_function(tf.TensorSpec(x.shape, tf.float32))
            .graph
        )
        ops[enabled] = {op.type for op in graph.get_operations()}
    assert "FusedBatchNormV3" in ops[True] and "FusedBatchNormV3" not in ops[False]
    assert FusedBatchNormalization().fused  # the default outside the block
