"""The translation export: a raw sentence in, its translation out (subword tokenization,
beam search or greedy decoding and detokenization all in the graph); batch prediction's
lines (one sentence each)."""

from __future__ import annotations

import keras
import tensorflow as tf

from pipelines.core.task import DEFAULT_SIGNATURE, Serving
from pipelines.translation.config import TranslationConfig
from tfmodels.translation import SubwordTokenizer

GREEDY = "greedy"


def signatures(
    config: TranslationConfig,
    model: keras.Model,
    source_tokenizer: SubwordTokenizer,
    target_tokenizer: SubwordTokenizer,
) -> dict[str, Serving]:
    """`serving_default` decodes as `serving.decoder` says, `greedy` greedily. Input
    `text` (one sentence each); outputs `translation` and `score` (the output's
    log-probability over the length penalty). Input longer than
    `data.max_source_tokens` subword tokens is cut there; empty input gives ""."""
    d, s = config.data, config.serving

    def translate(text, greedy: bool):
        ids = source_tokenizer.tokenize(text)[:, : d.max_source_tokens]
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        source = tf.pad(ids.to_tensor(), [[0, 0], [0, 1]])  # never zero columns
        bound = (
            tf.cast(tf.math.ceil(s.max_length_ratio * tf.cast(lengths, tf.float32)), tf.int32)
            + s.max_length_offset
        )
        bound = tf.where(lengths > 0, tf.minimum(bound, d.max_target_tokens + 1), 0)
        tokens, score = model.translate(
            source,
            bound,
            beam_width=s.beam_width,
            alpha=s.length_penalty,
            greedy=greedy,
            stop=s.beam_stop,
        )
        return {"translation": target_tokenizer.detokenize(tokens), "score": score}

    inputs = {"text": tf.TensorSpec([None], tf.string)}
    resources = [model, source_tokenizer, target_tokenizer]
    default_greedy = s.decoder == "greedy"
    return {
        DEFAULT_SIGNATURE: Serving(lambda text: translate(text, default_greedy), inputs, resources),
        GREEDY: Serving(lambda text: translate(text, True), inputs, resources),
    }
