"""A bidirectional LSTM that runs each direction as one fused TensorFlow kernel
(`BlockLSTMV2`), instead of one graph step per time step.

On CPU this is several times faster than `keras.layers.LSTM` for both training (the op has
a registered gradient) and serving, and it is a core TF op, so TF Serving runs it. The
backward direction reverses each sequence within its own length, so padding never leaks
into real positions.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class FusedBiLSTM(keras.layers.Layer):
    """`[B, T, F]` (with a `[B, T]` mask) -> `[B, T, 2 * units]`, forward and backward."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.supports_masking = True

    def build(self, input_shape):
        features = input_shape[-1]
        forget_bias = [0.0] * self.units + [1.0] * self.units + [0.0] * (2 * self.units)
        self.kernels, self.biases = [], []
        for direction in ("forward", "backward"):
            self.kernels.append(self.add_weight(
                name=f"{direction}_kernel", shape=(features + self.units, 4 * self.units),
                initializer="glorot_uniform"))
            # Gate layout i, f, c, o (IFCO): forget-gate bias starts at 1.
            self.biases.append(self.add_weight(
                name=f"{direction}_bias", shape=(4 * self.units,),
                initializer=keras.initializers.Constant(forget_bias)))

    def _run(self, x, kernel, bias):
        batch = tf.shape(x)[1]
        zeros = tf.zeros([batch, self.units], x.dtype)
        peephole = tf.zeros([self.units], x.dtype)
        return tf.raw_ops.BlockLSTMV2(
            seq_len_max=tf.cast(tf.shape(x)[0], tf.int64), x=x, cs_prev=zeros, h_prev=zeros,
            w=tf.cast(kernel, x.dtype), wci=peephole, wcf=peephole, wco=peephole,
            b=tf.cast(bias, x.dtype), cell_clip=0.0, use_peephole=False).h

    def call(self, inputs, mask=None):
        x = tf.transpose(tf.cast(inputs, tf.float32), [1, 0, 2])  # time major
        if mask is None:
            lengths = tf.fill([tf.shape(x)[1]], tf.shape(x)[0])
        else:
            lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        lengths = tf.cast(lengths, tf.int64)
        forward = self._run(x, self.kernels[0], self.biases[0])
        reversed_x = tf.reverse_sequence(x, lengths, seq_axis=0, batch_axis=1)
        backward = tf.reverse_sequence(self._run(reversed_x, self.kernels[1], self.biases[1]),
                                       lengths, seq_axis=0, batch_axis=1)
        out = tf.transpose(tf.concat([forward, backward], axis=-1), [1, 0, 2])
        return tf.cast(out, self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2 * self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}
