"""Raw utterances to the joint tagger's inputs, as a Keras layer so the exported graph takes
raw text: whitespace tokens (tensorflow-text, the `seq.in` convention), the corpus's
normalisation, word ids and per-word character ids.

Id 0 is padding and id 1 the out-of-vocabulary bucket, for words and characters alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf
import tensorflow_text as tf_text

PAD, OOV = "", "[UNK]"
PAD_ID, OOV_ID = 0, 1


def normalise(tokens: tf.Tensor, lowercase: bool, digits: bool) -> tf.Tensor:
    """What the vocabulary sees of a token: lower-cased, each digit as 0, as configured."""
    if lowercase:
        tokens = tf.strings.lower(tokens, encoding="utf-8")
    if digits:
        tokens = tf.strings.regex_replace(tokens, r"[0-9]", "0")
    return tokens


class UtteranceFeatures(keras.layers.Layer):
    """Tokens `[B, (T)]` -> `{"words": [B, T], "chars": [B, T, C]}` int32, T and C >= 1
    (`chars` only with `use_chars`)."""

    def __init__(self, words: Sequence[str], chars: Sequence[str], lowercase: bool = True,
                 digits: bool = True, max_word_chars: int = 20, use_chars: bool = True,
                 **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.lowercase = lowercase
        self.digits = digits
        self.max_word_chars = max_word_chars
        self.use_chars = use_chars
        self.tokenizer = tf_text.WhitespaceTokenizer()
        self.word_lookup = keras.layers.StringLookup(
            vocabulary=list(words), mask_token=PAD, oov_token=OOV, name="word_lookup")
        self.char_lookup = keras.layers.StringLookup(
            vocabulary=list(chars), mask_token=PAD, oov_token=OOV, name="char_lookup")
        self.built = True  # lookup tables only: ready for export before its first call

    @property
    def word_vocab_size(self) -> int:
        return self.word_lookup.vocabulary_size()

    @property
    def char_vocab_size(self) -> int:
        return self.char_lookup.vocabulary_size()

    def tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        """Strings `[B]` -> original-case tokens `[B, (T)]`, split on whitespace."""
        return self.tokenizer.tokenize(text)

    def call(self, tokens: tf.RaggedTensor) -> dict[str, tf.Tensor]:
        flat = normalise(tokens.flat_values, self.lowercase, self.digits)
        word_ids = tf.cast(self.word_lookup(flat), tf.int32)
        words = tokens.with_flat_values(word_ids).to_tensor(PAD_ID)
        # At least one word and one character, so a batch of empty strings still runs.
        words = tf.pad(words, [[0, 0], [0, tf.maximum(1 - tf.shape(words)[1], 0)]])
        if not self.use_chars:
            return {"words": words}
        chars = tf.strings.unicode_split(flat, "UTF-8")[:, : self.max_word_chars]
        char_ids = chars.with_flat_values(tf.cast(self.char_lookup(chars.flat_values), tf.int32))
        chars = tokens.with_flat_values(char_ids).to_tensor(PAD_ID)
        chars = tf.pad(chars, [[0, 0], [0, tf.maximum(1 - tf.shape(chars)[1], 0)],
                               [0, tf.maximum(1 - tf.shape(chars)[2], 0)]])
        return {"words": words, "chars": chars}


def vocabulary_tokens(texts: Sequence[str], lowercase: bool, digits: bool,
                      batch: int = 2048) -> list[list[str]]:
    """Normalised tokens of each text exactly as the graph makes them (for vocabularies)."""
    tokenizer = tf_text.WhitespaceTokenizer()
    out: list[list[str]] = []
    for start in range(0, len(texts), batch):
        tokens = tokenizer.tokenize(tf.constant(list(texts[start:start + batch])))
        norm = tokens.with_flat_values(normalise(tokens.flat_values, lowercase, digits))
        out += [[t.decode("utf-8") for t in row] for row in norm.to_list()]
    return out
