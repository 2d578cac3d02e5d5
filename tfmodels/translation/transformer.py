"""The encoder-decoder Transformer (Vaswani et al., 2017) from keras-hub's layers, with
cached decoding: each step runs the decoder on one new token against the keys and values
of the tokens before it (self-attention cache) and of the source (computed once).

Decoding runs the decoder layers' own sublayers in a step of its own rather than
keras-hub's cached call: that call keeps keys and values stacked in one [N, 2, max_len,
heads, dim] tensor that every step slices, updates, restacks and transposes whole, which
cost ten times the step's arithmetic on a CPU. Here keys and values are kept apart,
heads first, and grow by one token a step; a beam search reorders only what exists.

`tie_embeddings`: one matrix embeds source and target tokens and projects the decoder's
output (`SharedEmbedding`), in training and in every cached step alike."""

from __future__ import annotations

import keras
import keras_hub
import tensorflow as tf

from tfmodels.translation.seq2seq import Logits, Seq2Seq, padding_mask
from tfmodels.translation.shared_embedding import (
    SharedEmbedding,
    one_vocabulary,
    tied_initializer,
)


class TransformerTranslator(Seq2Seq):
    def __init__(
        self,
        source_vocab: int,
        target_vocab: int,
        layers: int = 3,
        width: int = 256,
        heads: int = 8,
        feedforward: int = 1024,
        dropout: float = 0.1,
        max_source: int = 128,
        max_target: int = 128,
        decoder_layers: int = 0,
        tie_embeddings: bool = False,
        float32_logits: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.heads, self.head_dim = heads, width // heads
        self.tie_embeddings = tie_embeddings
        if tie_embeddings:
            # One token matrix for both sides and the output; positions stay each side's.
            vocab = one_vocabulary(source_vocab, target_vocab)
            self.shared_embedding = SharedEmbedding(
                vocab, width, float32_logits, name="shared_embedding"
            )
            self.source_positions = keras_hub.layers.PositionEmbedding(
                max_source, initializer=tied_initializer(width), name="source_positions"
            )
            self.target_positions = keras_hub.layers.PositionEmbedding(
                max_target, initializer=tied_initializer(width), name="target_positions"
            )
        else:
            self.source_embedding = keras_hub.layers.TokenAndPositionEmbedding(
                source_vocab, max_source, width, name="source_embedding"
            )
            self.target_embedding = keras_hub.layers.TokenAndPositionEmbedding(
                target_vocab, max_target, width, name="target_embedding"
            )
        self.embedding_dropout = keras.layers.Dropout(dropout)
        self.encoders = [
            keras_hub.layers.TransformerEncoder(
                feedforward, heads, dropout=dropout, name=f"encoder_{i}"
            )
            for i in range(layers)
        ]
        self.decoders = [
            keras_hub.layers.TransformerDecoder(
                feedforward, heads, dropout=dropout, name=f"decoder_{i}"
            )
            for i in range(decoder_layers or layers)
        ]  # 0: as many as the encoder
        if not tie_embeddings:
            self.logits = Logits(target_vocab, float32_logits, name="logits")

    def _embed_source(self, ids):
        if not self.tie_embeddings:
            return self.source_embedding(ids)
        tokens = self.shared_embedding(ids)
        return tokens + self.source_positions(tokens)

    def _embed_target(self, ids, start_index=0):
        if not self.tie_embeddings:
            return self.target_embedding(ids, start_index=start_index)
        tokens = self.shared_embedding(ids)
        return tokens + self.target_positions(tokens, start_index=start_index)

    def _logits(self, hidden):
        """Float32 logits: the tied matrix's transpose, or a layer of their own."""
        if self.tie_embeddings:
            return self.shared_embedding.project(hidden)
        return self.logits(hidden)

    def encode(self, source, training=False):
        mask = padding_mask(source)
        x = self.embedding_dropout(self._embed_source(source), training=training)
        for layer in self.encoders:
            x = layer(x, padding_mask=mask, training=training)
        return x, mask

    def call(self, inputs, training=False):
        memory, source_mask = self.encode(inputs["source"], training)
        target = inputs["target"]
        x = self.embedding_dropout(self._embed_target(target), training=training)
        for layer in self.decoders:
            x = layer(
                x,
                memory,
                decoder_padding_mask=padding_mask(target),
                encoder_padding_mask=source_mask,
                training=training,
            )
        return self._logits(x)

    def start(self, source):
        memory, mask = self.encode(source)
        batch = tf.shape(source)[0]
        cross = [
            (
                _heads_first(layer._cross_attention_layer._key_dense(memory)),
                _heads_first(layer._cross_attention_layer._value_dense(memory)),
            )
            for layer in self.decoders
        ]
        empty = tf.zeros(tf.stack([batch, self.heads, 0, self.head_dim]), memory.dtype)
        own = [(empty, empty) for _ in self.decoders]
        return {"mask": mask[:, None, None, :], "cross": cross}, {"self": own}

    def step(self, tokens, static, state, index):
        x = self._embed_target(tokens[:, None], start_index=index)
        caches = []
        for layer, (keys, values), (memory_keys, memory_values) in zip(
            self.decoders, state["self"], static["cross"], strict=True
        ):
            own = layer._self_attention_layer
            keys = tf.concat([keys, _heads_first(own._key_dense(x))], axis=2)
            values = tf.concat([values, _heads_first(own._value_dense(x))], axis=2)
            caches.append((keys, values))
            attended = _attend(own, x, keys, values)
            x = layer._self_attention_layer_norm(x + attended)
            cross = layer._cross_attention_layer
            attended = _attend(cross, x, memory_keys, memory_values, static["mask"])
            x = layer._cross_attention_layer_norm(x + attended)
            hidden = layer._feedforward_output_dense(layer._feedforward_intermediate_dense(x))
            x = layer._feedforward_layer_norm(x + hidden)
        return self._logits(x)[:, 0], {"self": caches}

    def cross_attention(self, source, target):
        """The last decoder layer's cross-attention, averaged over its heads."""
        memory, source_mask = self.encode(source)
        x = self._embed_target(target)
        for layer in self.decoders[:-1]:
            x = layer(
                x,
                memory,
                decoder_padding_mask=padding_mask(target),
                encoder_padding_mask=source_mask,
            )
        last = self.decoders[-1]
        length = tf.shape(target)[1]
        causal = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0)
        own_mask = causal[None] & padding_mask(target)[:, None, :]
        attended = last._self_attention_layer(query=x, value=x, attention_mask=own_mask)
        x = last._self_attention_layer_norm(x + attended)
        cross_mask = tf.broadcast_to(
            source_mask[:, None, :], [tf.shape(x)[0], length, tf.shape(source)[1]]
        )
        _, scores = last._cross_attention_layer(
            query=x, value=memory, attention_mask=cross_mask, return_attention_scores=True
        )
        return tf.reduce_mean(scores, axis=1)


def _heads_first(projected: tf.Tensor) -> tf.Tensor:
    """[N, T, heads, dim] (what the attention's dense layers give) -> [N, heads, T, dim]."""
    return tf.transpose(projected, [0, 2, 1, 3])


def _attend(
    attention: keras.layers.MultiHeadAttention,
    x: tf.Tensor,
    keys: tf.Tensor,
    values: tf.Tensor,
    mask: tf.Tensor | None = None,
) -> tf.Tensor:
    """One query token `x` [N, 1, width] against `keys`/`values` [N, heads, T, dim] with
    the weights of `attention` (a decoder layer's post-norm sublayer, no dropout at
    inference): what its call computes, without a cache of its own."""
    query = _heads_first(attention._query_dense(x)) * attention._inverse_sqrt_key_dim
    scores = tf.matmul(query, keys, transpose_b=True)  # [N, heads, 1, T]
    if mask is not None:
        scores = tf.where(mask, scores, scores.dtype.min)
    mixed = tf.matmul(tf.nn.softmax(scores), values)  # [N, heads, 1, dim]
    return attention._output_dense(tf.transpose(mixed, [0, 2, 1, 3]))
