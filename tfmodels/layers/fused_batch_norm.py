"""Batch normalisation on TensorFlow's fused kernel.

Keras 3's `BatchNormalization` computes moments and the normalisation as separate ops in
float32; on a CPU that is over a third of a ResNet-20 training step. TensorFlow's
`FusedBatchNormV3` (oneDNN on CPU, cuDNN on GPU) does it in one kernel and takes bfloat16
and float16 inputs directly. Same weights, same config, same maths as the Keras layer,
which it falls back to where the fused kernel does not apply (other backends, masks,
renormalisation, normalisation over an axis other than the last of a 4-D tensor).

`fused_batch_norm(False)` around a model's construction makes the layers it creates run
Keras' own computation, for A/B comparisons (`model.fused_batch_norm` in the images
pipeline).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import keras
import tensorflow as tf

_FUSED_DEFAULT = contextvars.ContextVar("fused_batch_norm", default=True)


@contextlib.contextmanager
def fused_batch_norm(enabled: bool) -> Iterator[None]:
    """Layers created inside the block use the fused kernel or not, by `enabled`."""
    token = _FUSED_DEFAULT.set(bool(enabled))
    try:
        yield
    finally:
        _FUSED_DEFAULT.reset(token)


@keras.saving.register_keras_serializable(package="tfmodels")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` over the channels of NHWC images, fused."""

    def __init__(self, *args, fused: bool | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fused = _FUSED_DEFAULT.get() if fused is None else bool(fused)

    def get_config(self):
        return {**super().get_config(), "fused": self.fused}

    def _fusable(self, inputs, mask) -> bool:
        return (
            self.fused
            and keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and self.scale
            and self.center
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        dtype = inputs.dtype
        if dtype not in (tf.float32, tf.float16, tf.bfloat16):
            inputs = tf.cast(inputs, tf.float32)
        if training and self.trainable:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, self.gamma, self.beta, epsilon=self.epsilon, is_training=True
            )
            # The kernel returns the unbiased batch variance, as Keras' moving average
            # of the biased one would converge to within a factor n / (n - 1).
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
        else:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs,
                self.gamma,
                self.beta,
                mean=self.moving_mean,
                variance=self.moving_variance,
                epsilon=self.epsilon,
                is_training=False,
            )
        return (
            tf.cast(outputs, self.compute_dtype) if outputs.dtype != self.compute_dtype else outputs
        )
