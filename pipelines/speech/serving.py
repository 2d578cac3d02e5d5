"""The speech export: WAV bytes in (one utterance each, any length and rate), transcript
out, decoded in the graph; batch prediction's lines (a WAV path each)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from pipelines.core.task import DEFAULT_SIGNATURE, Serving
from pipelines.core.textio import read_listed_files
from pipelines.speech.audio import decode_batch, pad_edges
from pipelines.speech.config import SpeechConfig
from tfmodels.speech import CTCVocabulary, ctc_decode, snap_to_lexicon

GREEDY = "greedy"


def signatures(
    config: SpeechConfig,
    model: keras.Model,
    vocabulary: CTCVocabulary,
    lexicon: Sequence[str] = (),
) -> dict[str, Serving]:
    """`serving_default` decodes as `serving.decoder` says; `greedy` always greedily.
    Input `audio`: WAV bytes, one utterance each, any length and rate. Outputs
    `transcript`, `confidence` and `valid_audio` (False: empty, corrupt or not 16-bit
    PCM; its transcript is empty and its confidence 0). Silence (below
    `serving.silence_dbfs`) is valid audio with an empty transcript. With
    `serving.pad_ms`, each input gets that much low noise at both ends first; with
    `serving.snap_to_lexicon`, each word becomes the nearest of `lexicon` (the training
    words)."""
    d, s = config.data, config.serving
    silence = float(10 ** (s.silence_dbfs / 20))
    lexicon = list(lexicon) if s.snap_to_lexicon else []

    pad = int(round(s.pad_ms * d.sample_rate / 1000))
    pad_level = float(10 ** (s.pad_dbfs / 20))

    def recognise(audio, strategy: str):
        waveform, lengths, ok = decode_batch(audio, d.sample_rate, d.max_seconds)
        padded, padded_lengths = pad_edges(waveform, lengths, pad, pad_level)
        out = model({"waveform": padded, "lengths": padded_lengths}, training=False)
        decoded = ctc_decode(
            out["logits"],
            out["logit_lengths"],
            strategy=strategy,
            beam_width=s.beam_width,
            confidence=s.confidence,
        )
        text = vocabulary.decode(decoded["ids"])
        if lexicon:
            text = snap_to_lexicon(text, lexicon)
        power = tf.reduce_sum(tf.square(waveform), axis=1) / tf.maximum(
            tf.cast(lengths, tf.float32), 1.0
        )
        speech = ok & (tf.sqrt(power) >= silence)
        return {
            "transcript": tf.where(speech, text, ""),
            "confidence": tf.where(ok, decoded["confidence"], 0.0),
            "valid_audio": ok,
        }

    inputs = {"audio": tf.TensorSpec([None], tf.string)}
    resources = [model, vocabulary]
    return {
        DEFAULT_SIGNATURE: Serving(lambda audio: recognise(audio, s.decoder), inputs, resources),
        GREEDY: Serving(lambda audio: recognise(audio, "greedy"), inputs, resources),
    }


def request_from_lines(lines: Sequence[str], base_dir: Path) -> dict[str, Any]:
    """Each line is a WAV path (relative to `base_dir`); the request holds its bytes."""
    data = [content for _, content in read_listed_files(list(lines), base_dir, "WAV file")]
    return {"audio": np.array(data, dtype=object)}
