"""Subword tokenization that can be undone: raw text to WordPiece ids and back, in the graph.

WordPiece on its own loses spacing: BERT's pre-tokenizer splits punctuation off words, and
detokenizing joins every word with a space ("dog." comes back as "dog ."). Here each
whitespace-separated word first gets a word-start mark (`▁`, as SentencePiece writes it),
then punctuation is split off; the pieces are WordPiece-tokenized (`##` continues a piece).
Detokenizing concatenates the pieces and turns the marks back into spaces, so
`detokenize(tokenize(x)) == x` for any text with single spaces and no leading or trailing
ones, whose characters the vocabulary knows (runs of whitespace read as one space).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf
import tensorflow_text as tf_text

WORD_MARK = "▁"
RESERVED_TOKENS = ("[PAD]", "[UNK]", "[START]", "[END]")
PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3
_PUNCTUATION = r"[[:punct:]]|\pP"  # what BERT's basic tokenizer splits off


def pretokenize(text: tf.Tensor) -> tf.RaggedTensor:
    """String `[N]` -> ragged `[N, pieces]`: words marked at their start, punctuation
    split off (the units WordPiece learns and tokenizes)."""
    text = tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))
    text = tf.strings.regex_replace(text, WORD_MARK, "_")
    marked = tf.where(
        text == "", text, WORD_MARK + tf.strings.regex_replace(text, " ", " " + WORD_MARK)
    )
    return tf_text.regex_split(marked, rf"\s|{_PUNCTUATION}", _PUNCTUATION)


class SubwordTokenizer(keras.layers.Layer):
    """A WordPiece vocabulary (reserved tokens first) as graph ops: `tokenize` raw text
    to ragged ids, `detokenize` ids back to text (cut at the first [END])."""

    def __init__(self, vocabulary: Sequence[str], **kwargs):
        super().__init__(trainable=False, **kwargs)
        vocabulary = list(vocabulary)
        if tuple(vocabulary[: len(RESERVED_TOKENS)]) != RESERVED_TOKENS:
            raise ValueError(f"a vocabulary starts with {', '.join(RESERVED_TOKENS)}")
        self.vocabulary = vocabulary
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocabulary,
            suffix_indicator="##",
            max_bytes_per_word=100,
            token_out_type=tf.int32,
            unknown_token="[UNK]",
            no_pretokenization=True,
            support_detokenization=False,
        )
        pieces = [
            p.removeprefix("##") if i >= len(RESERVED_TOKENS) else ""
            for i, p in enumerate(vocabulary)
        ]
        self._pieces = tf.constant(pieces, dtype=tf.string)
        self.built = True  # no weights; the graph ops above are all it needs

    @property
    def size(self) -> int:
        return len(self.vocabulary)

    def tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        """String `[N]` -> int32 ragged `[N, tokens]` (no [START] or [END])."""
        words = pretokenize(text)
        ids = self._wordpiece.tokenize(words.flat_values)
        return words.with_flat_values(ids).merge_dims(-2, -1)

    def detokenize(self, ids: tf.Tensor) -> tf.Tensor:
        """Int `[N, T]` -> string `[N]`: nothing from the first [END] on, reserved tokens
        dropped, pieces joined and word marks turned back into spaces."""
        ids = tf.cast(ids, tf.int32)
        ended = tf.cumsum(tf.cast(tf.equal(ids, END_ID), tf.int32), axis=-1) > 0
        ids = tf.where(ended, PAD_ID, ids)
        text = tf.strings.reduce_join(tf.gather(self._pieces, ids), axis=-1)
        return tf.strings.strip(tf.strings.regex_replace(text, WORD_MARK, " "))

    def call(self, text):
        return self.tokenize(text)
