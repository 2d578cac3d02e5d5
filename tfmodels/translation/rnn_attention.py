"""The recurrent encoder-decoder with attention (Bahdanau et al., 2015; Luong et al.,
2015): a bidirectional GRU or LSTM reads the source; a GRU or LSTM decoder, started from
the encoder's final states, attends over the source at each step with an additive
(Bahdanau: v·tanh(W1 h_s + W2 h_t)) or multiplicative (Luong: h_s W h_t) score, and
predicts from tanh(W_c [context; h_t]). Attention reads the decoder's current state
(Luong's placement), so teacher-forced training runs the decoder over the whole target at
once and decoding caches only the recurrent state. `tie_embeddings`: one matrix embeds
both sides and projects the attentional vector to logits (`SharedEmbedding`)."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfmodels.translation.seq2seq import Logits, Seq2Seq, padding_mask
from tfmodels.translation.shared_embedding import SharedEmbedding, one_vocabulary

CELLS = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}
SCORES = ("additive", "multiplicative")


class RNNAttentionTranslator(Seq2Seq):
    def __init__(
        self,
        source_vocab: int,
        target_vocab: int,
        cell: str = "gru",
        attention: str = "additive",
        embedding: int = 256,
        units: int = 256,
        dropout: float = 0.1,
        tie_embeddings: bool = False,
        float32_logits: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, not '{cell}'")
        if attention not in SCORES:
            raise ValueError(f"attention must be one of {', '.join(SCORES)}, not '{attention}'")
        self.cell, self.attention, self.tie_embeddings = cell, attention, tie_embeddings
        rnn = CELLS[cell]
        if tie_embeddings:
            if embedding != units:
                raise ValueError(
                    f"tied embeddings project the attentional vector ({units} units) with "
                    f"the embedding's transpose: embedding ({embedding}) must equal units"
                )
            vocab = one_vocabulary(source_vocab, target_vocab)
            self.shared_embedding = SharedEmbedding(
                vocab, embedding, float32_logits, name="shared_embedding"
            )
        else:
            self.source_embedding = keras.layers.Embedding(source_vocab, embedding)
            self.target_embedding = keras.layers.Embedding(target_vocab, embedding)
        self.dropout = keras.layers.Dropout(dropout)
        self.encoder = keras.layers.Bidirectional(
            rnn(units, return_sequences=True, return_state=True), name="encoder"
        )
        self.bridge = [
            keras.layers.Dense(units, activation="tanh", name=f"bridge_{i}")
            for i in range(2 if cell == "lstm" else 1)
        ]
        self.decoder = rnn(units, return_sequences=True, return_state=True, name="decoder")
        self.keys = keras.layers.Dense(units, use_bias=False, name="attention_keys")
        if attention == "additive":
            self.query = keras.layers.Dense(units, use_bias=False, name="attention_query")
            self.energy = keras.layers.Dense(1, use_bias=False, name="attention_energy")
        self.combine = keras.layers.Dense(units, activation="tanh", name="attentional")
        if not tie_embeddings:
            self.logits = Logits(target_vocab, float32_logits, name="logits")

    def _embedding(self, side: str) -> keras.layers.Layer:
        return self.shared_embedding if self.tie_embeddings else getattr(self, f"{side}_embedding")

    def encode(self, source, training=False):
        mask = padding_mask(source)
        out = self.encoder(
            self.dropout(self._embedding("source")(source), training=training),
            mask=mask,
            training=training,
        )
        memory, states = out[0], out[1:]
        half = len(states) // 2  # forward states, then backward ones
        initial = [
            bridge(tf.concat([states[i], states[half + i]], -1))
            for i, bridge in enumerate(self.bridge)
        ]
        return {"memory": memory, "keys": self.keys(memory), "mask": mask}, initial

    def _attend(self, static, h):
        """h `[B, T, U]` -> (attentional vectors `[B, T, U]`, weights `[B, T, S]`)."""
        if self.attention == "additive":
            energy = tf.tanh(static["keys"][:, None] + self.query(h)[:, :, None])
            scores = tf.squeeze(self.energy(energy), -1)
        else:
            scores = tf.einsum("btu,bsu->bts", h, static["keys"])
        scores = tf.where(static["mask"][:, None, :], scores, tf.cast(-1e9, scores.dtype))
        weights = tf.nn.softmax(scores, axis=-1)
        context = tf.einsum("bts,bsd->btd", weights, static["memory"])
        return self.combine(tf.concat([context, h], -1)), weights

    def _decode(self, static, initial, target, training=False):
        x = self.dropout(self._embedding("target")(target), training=training)
        out = self.decoder(x, initial_state=initial, training=training)
        h, states = self.dropout(out[0], training=training), list(out[1:])
        attentional, weights = self._attend(static, h)
        attentional = self.dropout(attentional, training=training)
        if self.tie_embeddings:
            logits = self.shared_embedding.project(attentional)
        else:
            logits = self.logits(attentional)
        return logits, states, weights

    def call(self, inputs, training=False):
        static, initial = self.encode(inputs["source"], training)
        return self._decode(static, initial, inputs["target"], training)[0]

    def start(self, source):
        static, initial = self.encode(source)
        return static, initial

    def step(self, tokens, static, state, index):
        logits, states, _ = self._decode(static, list(state), tokens[:, None])
        return logits[:, 0], states

    def cross_attention(self, source, target):
        static, initial = self.encode(source)
        return self._decode(static, initial, target)[2]
