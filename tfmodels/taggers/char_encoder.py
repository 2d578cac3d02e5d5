"""Character-level word encoder: a word the vocabulary never saw (a new city name, a flight
number) still gets a vector from its spelling.

Input `[B, T, C]` character ids per word (0 = padding), output `[B, T, F]`: embeddings,
one convolution per kernel width, max-pooled over the word's real characters.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfmodels")
class CharCNN(keras.layers.Layer):
    """Embed each word's characters, convolve (several widths), max-pool over characters.

    Padding characters are zeroed before the convolution and excluded from the pooling;
    a padding word (no characters) encodes to zeros.
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int = 32,
        filters: int = 64,
        kernel_sizes: Sequence[int] = (3,),
        init_stddev: float = 0.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.dim = dim
        self.filters = filters
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.init_stddev = init_stddev
        if not self.kernel_sizes:
            raise ValueError("CharCNN needs at least one kernel size")
        init = keras.initializers.RandomNormal(stddev=init_stddev) if init_stddev > 0 else "uniform"
        self.embedding = keras.layers.Embedding(
            vocab_size, dim, embeddings_initializer=init, name="char_embedding"
        )
        self.convs = [
            keras.layers.Conv1D(filters, k, padding="same", activation="relu", name=f"char_conv{k}")
            for k in self.kernel_sizes
        ]

    @property
    def output_dim(self) -> int:
        return self.filters * len(self.kernel_sizes)

    def build(self, input_shape):
        self.embedding.build((None, None))
        for conv in self.convs:
            conv.build((None, None, self.dim))
        self.built = True

    def call(self, chars):
        shape = ops.shape(chars)
        flat = ops.reshape(chars, (-1, shape[2]))  # [B*T, C]
        mask = ops.expand_dims(ops.cast(ops.not_equal(flat, 0), self.compute_dtype), -1)
        x = self.embedding(flat) * mask
        pooled = [ops.max(conv(x) * mask, axis=1) for conv in self.convs]  # relu >= 0
        out = ops.concatenate(pooled, axis=-1) if len(pooled) > 1 else pooled[0]
        return ops.reshape(out, (shape[0], shape[1], self.output_dim))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], self.output_dim)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "dim": self.dim,
            "filters": self.filters,
            "kernel_sizes": list(self.kernel_sizes),
            "init_stddev": self.init_stddev,
        }
