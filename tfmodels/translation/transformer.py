"""The encoder-decoder Transformer (Vaswani et al., 2017) from keras-hub's layers, with
cached decoding: each step runs the decoder on one new token against the keys and values
of the tokens before it (self-attention cache) and of the source (computed once)."""

from __future__ import annotations

import keras
import keras_hub
import tensorflow as tf

from tfmodels.translation.seq2seq import Seq2Seq, padding_mask


class TransformerTranslator(Seq2Seq):
    def __init__(self, source_vocab: int, target_vocab: int, layers: int = 3, width: int = 256,
                 heads: int = 8, feedforward: int = 1024, dropout: float = 0.1,
                 max_source: int = 128, max_target: int = 128, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.head_dim = heads, width // heads
        self.source_embedding = keras_hub.layers.TokenAndPositionEmbedding(
            source_vocab, max_source, width, name="source_embedding")
        self.target_embedding = keras_hub.layers.TokenAndPositionEmbedding(
            target_vocab, max_target, width, name="target_embedding")
        self.embedding_dropout = keras.layers.Dropout(dropout)
        self.encoders = [keras_hub.layers.TransformerEncoder(
            feedforward, heads, dropout=dropout, name=f"encoder_{i}") for i in range(layers)]
        self.decoders = [keras_hub.layers.TransformerDecoder(
            feedforward, heads, dropout=dropout, name=f"decoder_{i}") for i in range(layers)]
        self.logits = keras.layers.Dense(target_vocab, name="logits", dtype="float32")

    def encode(self, source, training=False):
        mask = padding_mask(source)
        x = self.embedding_dropout(self.source_embedding(source), training=training)
        for layer in self.encoders:
            x = layer(x, padding_mask=mask, training=training)
        return x, mask

    def call(self, inputs, training=False):
        memory, source_mask = self.encode(inputs["source"], training)
        target = inputs["target"]
        x = self.embedding_dropout(self.target_embedding(target), training=training)
        for layer in self.decoders:
            x = layer(x, memory, decoder_padding_mask=padding_mask(target),
                      encoder_padding_mask=source_mask, training=training)
        return self.logits(x)

    def start(self, source, max_length):
        memory, mask = self.encode(source)
        batch = tf.shape(source)[0]
        cross = [tf.stack([layer._cross_attention_layer._key_dense(memory),
                           layer._cross_attention_layer._value_dense(memory)], axis=1)
                 for layer in self.decoders]
        own = [tf.zeros(tf.stack([batch, 2, max_length, self.heads, self.head_dim]),
                        memory.dtype) for _ in self.decoders]
        return {"memory": memory, "mask": mask, "cross": cross}, {"self": own}

    def step(self, tokens, static, state, index):
        x = self.target_embedding(tokens[:, None], start_index=index)
        caches = []
        for layer, cache, cross in zip(self.decoders, state["self"], static["cross"],
                                       strict=True):
            x, cache, _ = layer(x, static["memory"], encoder_padding_mask=static["mask"],
                                self_attention_cache=cache,
                                self_attention_cache_update_index=index,
                                cross_attention_cache=cross,
                                cross_attention_cache_update_index=None)
            caches.append(cache)
        return self.logits(x)[:, 0], {"self": caches}

    def cross_attention(self, source, target):
        """The last decoder layer's cross-attention, averaged over its heads."""
        memory, source_mask = self.encode(source)
        x = self.target_embedding(target)
        for layer in self.decoders[:-1]:
            x = layer(x, memory, decoder_padding_mask=padding_mask(target),
                      encoder_padding_mask=source_mask)
        last = self.decoders[-1]
        length = tf.shape(target)[1]
        causal = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0)
        own_mask = causal[None] & padding_mask(target)[:, None, :]
        attended = last._self_attention_layer(query=x, value=x, attention_mask=own_mask)
        x = last._self_attention_layer_norm(x + attended)
        cross_mask = tf.broadcast_to(source_mask[:, None, :],
                                     [tf.shape(x)[0], length, tf.shape(source)[1]])
        _, scores = last._cross_attention_layer(query=x, value=memory,
                                                attention_mask=cross_mask,
                                                return_attention_scores=True)
        return tf.reduce_mean(scores, axis=1)
