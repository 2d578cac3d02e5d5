"""Contextual word vectors from a pretrained subword encoder (a BERT-style backbone), for a
tagger that works on whole words.

Pretraining on large text is what a tagger trained on a few thousand utterances lacks: the
encoder has seen "love field" and "st. petersburg" in context. Each word gets the vectors of
its first subword piece from each encoder layer (`SubwordEncoderLayers`), mixed with learned
weights (`LayerMix`, ELMo's scalar mix): lower layers hold more of the word, upper layers
more of the sentence, and which mix suits a task is learned.

The encoder is frozen, so its vectors are a fixed function of the text: training can compute
them once per utterance and feed the tagger `[B, T, L, D]` layer vectors
(`with_layer_mix`), while the exported graph runs the encoder on the request.
"""

from __future__ import annotations

import keras
from keras import ops

# Keys of the encoder's inputs (the keras-hub backbone convention).
TOKEN_IDS, SEGMENT_IDS, PADDING_MASK = "token_ids", "segment_ids", "padding_mask"


class SubwordEncoderLayers(keras.layers.Layer):
    """`pieces [B, P]` subword ids (0 = padding) and `first_piece [B, T]` (the position of
    each word's first piece) -> `[B, T, L, D]`: each of the encoder's L layer outputs at
    each word's first piece.

    `encoder` maps `{token_ids, segment_ids, padding_mask}` to a list of `[B, P, D]` layer
    outputs; it is frozen and always runs in inference mode (no dropout).
    """

    def __init__(self, encoder: keras.Model, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.encoder = encoder
        self.encoder.trainable = False
        self.num_layers = len(encoder.outputs)
        self.dim = int(encoder.outputs[0].shape[-1])

    def build(self, pieces_shape, first_piece_shape=None):
        self.built = True  # the encoder holds the weights

    def call(self, pieces, first_piece):
        pieces = ops.cast(pieces, "int32")
        layers = self.encoder(
            {
                TOKEN_IDS: pieces,
                SEGMENT_IDS: ops.zeros_like(pieces),
                PADDING_MASK: ops.cast(ops.not_equal(pieces, 0), "int32"),
            },
            training=False,
        )
        if not isinstance(layers, (list, tuple)):
            layers = [layers]
        stacked = ops.stack([ops.cast(layer, "float32") for layer in layers], axis=2)
        index = ops.reshape(ops.cast(first_piece, "int32"), (*ops.shape(first_piece), 1, 1))
        return ops.take_along_axis(stacked, index, axis=1)  # [B, T, L, D]

    def compute_output_shape(self, pieces_shape, first_piece_shape=None):
        return (*first_piece_shape, self.num_layers, self.dim)


@keras.saving.register_keras_serializable(package="tfmodels")
class LayerMix(keras.layers.Layer):
    """`[B, T, L, D]` -> `[B, T, D]`: softmax-weighted sum over L, times a learned scale."""

    def build(self, input_shape):
        self.layer_logits = self.add_weight(
            shape=(input_shape[-2],), initializer="zeros", name="layer_logits"
        )
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")
        self.built = True

    def call(self, layers):
        weights = ops.softmax(self.layer_logits)
        mixed = ops.einsum("btld,l->btd", ops.cast(layers, "float32"), weights)
        return ops.cast(self.scale * mixed, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-2], input_shape[-1])


def with_layer_mix(
    tagger: keras.Model, feature: str, num_layers: int, dim: int, layers_input: str, name: str
) -> keras.Model:
    """`tagger` (which takes the dense `[B, T, D]` input `feature`) fed by a `LayerMix` of
    the `[B, T, L, D]` input `layers_input`, in place of `feature`.

    One mix for the whole model, however many taggers (an ensemble's members) share it.
    """
    inputs = {
        key: keras.Input(shape=t.shape[1:], dtype=t.dtype, name=key)
        for key, t in tagger.input.items()
        if key != feature
    }
    inputs[layers_input] = keras.Input(
        shape=(None, num_layers, dim), dtype="float32", name=layers_input
    )
    vectors = LayerMix(name="layer_mix")(inputs[layers_input])
    tagger_inputs = {key: inputs[key] for key in tagger.input if key != feature}
    return keras.Model(inputs, tagger({**tagger_inputs, feature: vectors}), name=name)
