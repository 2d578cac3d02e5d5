"""One subword embedding matrix E for the source, the target and the output projection
(Press & Wolf, 2017; Vaswani et al., 2017, section 3.4): inputs are E[ids] * sqrt(width),
logits are hidden @ E^T. E starts N(0, 1 / width), so scaled inputs start near unit
variance and the logits of a unit-variance hidden state do too (fairseq's choice)."""

from __future__ import annotations

import keras


def one_vocabulary(source_vocab: int, target_vocab: int) -> int:
    """The size of the one vocabulary tied embeddings need, or a ValueError."""
    if source_vocab != target_vocab:
        raise ValueError(
            f"tied embeddings need one vocabulary for both sides: the source has "
            f"{source_vocab} entries, the target {target_vocab}"
        )
    return source_vocab


def tied_initializer(width: int) -> keras.initializers.Initializer:
    """N(0, 1 / width): the tied matrix's start, and (unscaled) learned positions'."""
    return keras.initializers.RandomNormal(stddev=width**-0.5)


class SharedEmbedding(keras.layers.Layer):
    """`layer(ids [..]) -> [.., width]` (scaled by sqrt(width)); `layer.project(hidden
    [.., width]) -> logits [.., vocab]` in float32 with the same matrix (computed in float32,
    or with `float32_logits=False` in the layer's compute precision)."""

    def __init__(self, vocab: int, width: int, float32_logits: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(width) ** 0.5
        self.tokens = keras.layers.ReversibleEmbedding(
            vocab,
            width,
            tie_weights=True,
            embeddings_initializer=tied_initializer(width),
            # logits in float32, as an untied float32 Dense's, or in this layer's compute
            # dtype (named: with None the product may promote to float32)
            reverse_dtype="float32" if float32_logits else self.compute_dtype,
            name="tokens",
        )

    def build(self, input_shape=None):
        self.tokens.build(input_shape)
        self.built = True

    @property
    def embeddings(self) -> keras.Variable:
        """The one matrix [vocab, width]."""
        return self.tokens.embeddings

    def call(self, ids):
        return self.tokens(ids) * keras.ops.cast(self.scale, self.compute_dtype)

    def project(self, hidden):
        return keras.ops.cast(self.tokens(hidden, reverse=True), "float32")
