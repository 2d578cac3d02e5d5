"""Transcripts to CTC label ids and back, in the graph: characters or words looked up in a
fixed vocabulary, id 0 left to the CTC blank."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

UNITS = ("char", "word")
OOV = "[UNK]"


@keras.saving.register_keras_serializable(package="tfmodels")
class CTCVocabulary(keras.layers.Layer):
    """Token `i` of `tokens` is label id `i + 1`; `num_classes = len(tokens) + 1`.

    `unit="char"`: every character is a token (put `" "` in `tokens` for word breaks);
    `unit="word"`: whitespace-separated words are. Whitespace runs are read as one space
    and the ends stripped, both ways.
    """

    def __init__(self, tokens: Sequence[str], unit: str = "char", **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        if unit not in UNITS:
            raise ValueError(f"CTCVocabulary: unknown unit '{unit}' ({', '.join(UNITS)})")
        self.tokens = list(tokens)
        if len(set(self.tokens)) != len(self.tokens) or OOV in self.tokens or "" in self.tokens:
            raise ValueError(f"CTCVocabulary: tokens must be distinct, non-empty and not {OOV}")
        if unit == "word" and any(not t.strip() or t.split() != [t] for t in self.tokens):
            raise ValueError("CTCVocabulary: word tokens cannot contain whitespace")
        self.unit = unit
        # Out-of-vocabulary tokens get index 0, the blank, and are dropped by `encode`.
        self.lookup = keras.layers.StringLookup(
            vocabulary=self.tokens, num_oov_indices=1, oov_token=OOV, mask_token=None, name="lookup"
        )
        self.built = True

    @property
    def num_classes(self) -> int:
        return len(self.tokens) + 1

    def _split(self, text: tf.Tensor) -> tf.RaggedTensor:
        text = tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))
        if self.unit == "char":
            return tf.strings.unicode_split(text, "UTF-8")
        return tf.strings.split(text)

    def encode(self, text: tf.Tensor) -> tf.RaggedTensor:
        """Strings `[B]` -> label ids `[B, (L)]` int32 (tokens outside the vocabulary are
        dropped: validate transcripts before, as the manifest reader does)."""
        pieces = self._split(text)
        ids = pieces.with_flat_values(tf.cast(self.lookup(pieces.flat_values), tf.int32))
        return tf.ragged.boolean_mask(ids, ids > 0)

    def call(self, text):
        """Strings `[B]` -> label ids `[B, L]` int32 padded with -1 (CTC targets)."""
        return self.encode(text).to_tensor(-1)

    def decode(self, ids) -> tf.Tensor:
        """Label ids `[B, L]` (`<= 0` or beyond the vocabulary are skipped) -> strings `[B]`,
        whitespace normalised as `encode` reads it."""
        ids = tf.cast(ids, tf.int32)
        keep = (ids > 0) & (ids < self.num_classes)
        table = tf.constant(["", *self.tokens])
        pieces = tf.ragged.boolean_mask(tf.gather(table, tf.where(keep, ids, 0)), keep)
        if self.unit == "word":
            return tf.strings.reduce_join(pieces, axis=1, separator=" ")
        # A CTC model may emit a space at either end or twice: read as the transcripts are.
        text = tf.strings.reduce_join(pieces, axis=1)
        return tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))

    def get_config(self) -> dict:
        return {**super().get_config(), "tokens": self.tokens, "unit": self.unit}


def snap_to_lexicon(text: tf.Tensor, lexicon: Sequence[str]) -> tf.Tensor:
    """Strings `[B]` with each whitespace-separated word replaced by the `lexicon` word
    nearest to it in characters (Levenshtein; the first of equals): a closed-vocabulary
    constraint on a character model's output ("thre" -> "three"). Cost: words x lexicon
    edit distances, so for small vocabularies (digits, commands)."""
    if not lexicon:
        return text
    words = tf.strings.split(text)
    flat = words.flat_values
    count = tf.size(flat)
    size = len(lexicon)

    def nearest():
        hyp = tf.strings.unicode_split(flat, "UTF-8")
        known = tf.strings.unicode_split(tf.constant(list(lexicon)), "UTF-8")
        pairs_hyp = tf.gather(hyp, tf.repeat(tf.range(count), size))
        pairs_known = tf.gather(known, tf.tile(tf.range(size), [count]))
        distance = tf.edit_distance(pairs_hyp.to_sparse(), pairs_known.to_sparse(), normalize=False)
        return tf.argmin(tf.reshape(distance, [count, size]), axis=1, output_type=tf.int32)

    # The edit-distance kernel refuses an empty batch: no words, nothing to look up.
    nearest = tf.cond(count > 0, nearest, lambda: tf.zeros([0], tf.int32))
    snapped = words.with_flat_values(tf.gather(tf.constant(list(lexicon)), nearest))
    return tf.strings.reduce_join(snapped, axis=1, separator=" ")
