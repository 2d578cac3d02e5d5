"""Contextual word vectors from a pretrained subword encoder (a BERT-style backbone), for a
tagger that works on whole words.

Pretraining on large text is what a tagger trained on a few thousand utterances lacks: the
encoder has seen "love field" and "st. petersburg" in context. Each word gets the vectors of
its first subword piece, mixed over the encoder's layers with learned weights (ELMo's scalar
mix): lower layers hold more of the word, upper layers more of the sentence, and which mix
suits a task is learned. The encoder stays frozen, so it costs one forward pass a batch.
"""

from __future__ import annotations

import keras
from keras import ops

# Keys of the encoder's inputs (the keras-hub backbone convention).
TOKEN_IDS, SEGMENT_IDS, PADDING_MASK = "token_ids", "segment_ids", "padding_mask"


class SubwordContext(keras.layers.Layer):
    """`pieces [B, P]` subword ids (0 = padding) and `first_piece [B, T]` (the position of
    each word's first piece) -> `[B, T, D]`: a learned mix of the encoder's layer outputs.

    `encoder` maps `{token_ids, segment_ids, padding_mask}` to a list of `[B, P, D]` layer
    outputs; it is frozen and always runs in inference mode (no dropout).
    """

    def __init__(self, encoder: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.encoder.trainable = False
        self.num_layers = len(encoder.outputs)
        self.dim = int(encoder.outputs[0].shape[-1])

    def build(self, pieces_shape, first_piece_shape=None):
        self.layer_logits = self.add_weight(shape=(self.num_layers,), initializer="zeros",
                                            name="layer_logits")
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")
        self.built = True

    def call(self, pieces, first_piece):
        pieces = ops.cast(pieces, "int32")
        layers = self.encoder({TOKEN_IDS: pieces, SEGMENT_IDS: ops.zeros_like(pieces),
                               PADDING_MASK: ops.cast(ops.not_equal(pieces, 0), "int32")},
                              training=False)
        if not isinstance(layers, (list, tuple)):
            layers = [layers]
        weights = ops.softmax(self.layer_logits)
        mixed = sum(weights[i] * ops.cast(layer, "float32") for i, layer in enumerate(layers))
        words = ops.take_along_axis(mixed, ops.expand_dims(ops.cast(first_piece, "int32"), -1),
                                    axis=1)
        return ops.cast(self.scale * words, self.compute_dtype)

    def compute_output_shape(self, pieces_shape, first_piece_shape=None):
        return (*first_piece_shape, self.dim)


def with_subword_context(tagger: keras.Model, context: SubwordContext, feature: str,
                         name: str) -> keras.Model:
    """`tagger` (which takes the dense `[B, T, D]` input `feature`) fed by `context`: the
    result takes the tagger's other inputs plus `pieces` and `first_piece`.

    The encoder runs once for the whole model, however many taggers (an ensemble's
    members) share its vectors inside `tagger`.
    """
    inputs = {key: keras.Input(shape=t.shape[1:], dtype=t.dtype, name=key)
              for key, t in tagger.input.items() if key != feature}
    inputs["pieces"] = keras.Input(shape=(None,), dtype="int32", name="pieces")
    inputs["first_piece"] = keras.Input(shape=(None,), dtype="int32", name="first_piece")
    vectors = context(inputs["pieces"], inputs["first_piece"])
    tagger_inputs = {key: inputs[key] for key in tagger.input if key != feature}
    return keras.Model(inputs, tagger({**tagger_inputs, feature: vectors}), name=name)
