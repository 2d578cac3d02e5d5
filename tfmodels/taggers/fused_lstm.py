"""Serving a trained Keras BiLSTM with one fused TensorFlow kernel per direction
(`BlockLSTMV2`) instead of one graph step per time step.

Training stays with `keras.layers.LSTM` (cuDNN on GPU); for inference on a CPU the fused
kernel is much faster, and it is a core TF op, so TF Serving runs it. The backward direction
reverses each sequence within its own length, so padding never leaks into real positions.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class FusedBiLSTM(keras.layers.Layer):
    """Runs a trained `Bidirectional(LSTM)` over `[B, T, F]` (with a `[B, T]` mask) with
    one fused kernel per direction; reads the source layer's variables, owns none."""

    def __init__(self, source: keras.layers.Bidirectional, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.source = source
        self.units = source.forward_layer.units
        self.supports_masking = True

    def build(self, input_shape):
        pass  # the source layer holds the weights

    def _run(self, x, layer: keras.layers.LSTM):
        cell = layer.cell
        kernel = tf.cast(tf.concat([cell.kernel, cell.recurrent_kernel], axis=0), x.dtype)
        batch = tf.shape(x)[1]
        zeros = tf.zeros([batch, self.units], x.dtype)
        peephole = tf.zeros([self.units], x.dtype)
        # Gate layout i, f, c, o: the same as Keras' LSTM kernels.
        return tf.raw_ops.BlockLSTMV2(
            seq_len_max=tf.cast(tf.shape(x)[0], tf.int64),
            x=x,
            cs_prev=zeros,
            h_prev=zeros,
            w=kernel,
            wci=peephole,
            wcf=peephole,
            wco=peephole,
            b=tf.cast(cell.bias, x.dtype),
            cell_clip=-1.0,
            use_peephole=False,
        ).h

    def call(self, inputs, mask=None):
        x = tf.transpose(tf.cast(inputs, tf.float32), [1, 0, 2])  # time major
        if mask is None:
            lengths = tf.fill([tf.shape(x)[1]], tf.shape(x)[0])
        else:
            lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
        lengths = tf.cast(lengths, tf.int64)
        forward = self._run(x, self.source.forward_layer)
        reversed_x = tf.reverse_sequence(x, lengths, seq_axis=0, batch_axis=1)
        backward = tf.reverse_sequence(
            self._run(reversed_x, self.source.backward_layer), lengths, seq_axis=0, batch_axis=1
        )
        out = tf.transpose(tf.concat([forward, backward], axis=-1), [1, 0, 2])
        return tf.cast(out, self.compute_dtype)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2 * self.units)


def _is_keras_bilstm(layer: keras.layers.Layer) -> bool:
    return (
        isinstance(layer, keras.layers.Bidirectional)
        and isinstance(layer.forward_layer, keras.layers.LSTM)
        and layer.forward_layer.cell.activation is keras.activations.tanh
        and layer.forward_layer.cell.recurrent_activation is keras.activations.sigmoid
        and layer.forward_layer.cell.use_bias
    )


def with_fused_lstms(model: keras.Model) -> keras.Model:
    """The same functional model, its Keras BiLSTMs run by the fused kernel for inference.

    Every other layer is shared, and the fused layers read the trained LSTM variables, so
    the result always computes what `model` computes (tested), only faster on a CPU.
    """

    def swap(layer):
        if _is_keras_bilstm(layer):
            return FusedBiLSTM(layer, name=layer.name)
        if isinstance(layer, keras.Model):  # a nested model (an ensemble's member)
            return with_fused_lstms(layer)
        return layer

    # Cloned from an uncompiled view of the same graph: cloning a compiled model would
    # also rebuild its losses from config, and a loss may hold model state (a CRF's).
    view = keras.Model(model.input, model.output, name=model.name)
    return keras.models.clone_model(view, clone_function=swap)
