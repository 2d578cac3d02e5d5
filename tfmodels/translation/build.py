"""The translator a `TranslatorConfig` names, built for the data's vocabularies."""

from __future__ import annotations

import tensorflow as tf

from tfmodels.translation.config import TranslatorConfig
from tfmodels.translation.rnn_attention import RNNAttentionTranslator
from tfmodels.translation.seq2seq import Seq2Seq
from tfmodels.translation.transformer import TransformerTranslator


def build_translator(
    config: TranslatorConfig,
    source_vocab: int,
    target_vocab: int,
    max_source: int,
    max_target: int,
) -> Seq2Seq:
    """`config.name` for these vocabulary sizes and (the Transformer's positions) sentence
    lengths in tokens, built (its weights exist)."""
    if config.name == "transformer":
        model: Seq2Seq = TransformerTranslator(
            source_vocab,
            target_vocab,
            layers=config.layers,
            decoder_layers=config.decoder_layers,
            width=config.width,
            heads=config.heads,
            feedforward=config.feedforward,
            dropout=config.dropout,
            max_source=max_source,
            max_target=max_target,
            tie_embeddings=config.tie_embeddings,
            float32_logits=config.float32_logits,
            name="transformer",
        )
    elif config.name == "rnn_attention":
        model = RNNAttentionTranslator(
            source_vocab,
            target_vocab,
            cell=config.cell,
            attention=config.attention,
            embedding=config.embedding,
            units=config.units,
            dropout=config.dropout,
            tie_embeddings=config.tie_embeddings,
            float32_logits=config.float32_logits,
            name="rnn_attention",
        )
    else:
        raise ValueError(f"model.name: unknown translator '{config.name}'")
    one = tf.ones([1, 2], tf.int32)
    model({"source": one, "target": one})  # build every layer
    return model
