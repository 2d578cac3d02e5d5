"""Raw utterances to the joint tagger's inputs, as a Keras layer so the exported graph takes
raw text: whitespace tokens (tensorflow-text, the `seq.in` convention), the corpus's
normalisation, word ids and per-word character ids, and, for a pretrained subword encoder,
its WordPiece ids with the position of each word's first piece.

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

    def __init__(
        self,
        words: Sequence[str],
        chars: Sequence[str],
        lowercase: bool = True,
        digits: bool = True,
        max_word_chars: int = 20,
        use_chars: bool = True,
        **kwargs,
    ):
        super().__init__(trainable=False, **kwargs)
        self.lowercase = lowercase
        self.digits = digits
        self.max_word_chars = max_word_chars
        self.use_chars = use_chars
        self.tokenizer = tf_text.WhitespaceTokenizer()
        self.word_lookup = keras.layers.StringLookup(
            vocabulary=list(words), mask_token=PAD, oov_token=OOV, name="word_lookup"
        )
        self.char_lookup = keras.layers.StringLookup(
            vocabulary=list(chars), mask_token=PAD, oov_token=OOV, name="char_lookup"
        )
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
        chars = tf.pad(
            chars,
            [
                [0, 0],
                [0, tf.maximum(1 - tf.shape(chars)[1], 0)],
                [0, tf.maximum(1 - tf.shape(chars)[2], 0)],
            ],
        )
        return {"words": words, "chars": chars}


class SubwordPieces(keras.layers.Layer):
    """Tokens `[B, (T)]` -> `{"pieces": [B, P], "first_piece": [B, T']}` for a BERT-style
    encoder: `[CLS]`, the WordPiece ids of each word (tensorflow-text's fast WordPiece,
    which also splits punctuation as BERT does), `[SEP]`; `first_piece` is where each word
    starts, padded to `T'` columns with 0 (the `[CLS]` position).

    The pieces see the raw token (digits kept: the encoder knows numbers), case-folded and
    accent-stripped for an uncased vocabulary. At most `max_pieces` positions: the words
    beyond share the last piece's vectors.
    """

    def __init__(
        self,
        vocabulary: Sequence[str],
        lowercase: bool = True,
        max_pieces: int = 512,
        cls_token: str = "[CLS]",
        sep_token: str = "[SEP]",
        unknown_token: str = "[UNK]",
        **kwargs,
    ):
        super().__init__(trainable=False, **kwargs)
        vocabulary = list(vocabulary)
        self.lowercase = lowercase
        self.max_pieces = max_pieces
        self.cls_id = vocabulary.index(cls_token)
        self.sep_id = vocabulary.index(sep_token)
        self.wordpiece = tf_text.FastWordpieceTokenizer(
            vocabulary,
            token_out_type=tf.int32,
            unknown_token=unknown_token,
            support_detokenization=False,
        )
        self.unknown_id = vocabulary.index(unknown_token)
        # BERT's uncased normalisation (lower case, NFD, accents stripped), as one op.
        self.normalizer = (
            tf_text.FastBertNormalizer(lower_case_nfd_strip_accents=True) if lowercase else None
        )
        self.built = True

    def call(self, tokens: tf.RaggedTensor, width: tf.Tensor) -> dict[str, tf.Tensor]:
        flat = tokens.flat_values
        if self.normalizer is not None:
            flat = self.normalizer.normalize(flat)
        pieces = self.wordpiece.tokenize(flat)  # [N, (p)]: each word's pieces
        # A word that gives no piece still needs a position: it reads as the unknown piece.
        empty = tf.cast(pieces.row_lengths() == 0, tf.int64)
        filler = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(empty)], self.unknown_id), empty
        )
        pieces = tf.concat([pieces, filler], axis=1)
        per_word = tokens.with_flat_values(pieces.row_lengths())  # [B, (T)]
        starts = 1 + tf.math.cumsum(per_word, axis=1, exclusive=True)  # after [CLS]
        rows = tf.RaggedTensor.from_row_lengths(pieces.flat_values, tf.reduce_sum(per_word, axis=1))
        edge = tf.ones([tokens.nrows(), 1], tf.int32)
        rows = tf.concat(
            [
                tf.RaggedTensor.from_tensor(edge * self.cls_id),
                rows,
                tf.RaggedTensor.from_tensor(edge * self.sep_id),
            ],
            axis=1,
        )
        ids = rows[:, : self.max_pieces].to_tensor(0)
        first = tf.minimum(tf.cast(starts, tf.int32).to_tensor(0), self.max_pieces - 1)
        width = tf.cast(width, tf.int32)
        first = tf.pad(first, [[0, 0], [0, tf.maximum(width - tf.shape(first)[1], 0)]])
        return {"pieces": ids, "first_piece": first[:, :width]}


def vocabulary_tokens(
    texts: Sequence[str], lowercase: bool, digits: bool, batch: int = 2048
) -> list[list[str]]:
    """Normalised tokens of each text exactly as the graph makes them (for vocabularies)."""
    tokenizer = tf_text.WhitespaceTokenizer()
    out: list[list[str]] = []
    for start in range(0, len(texts), batch):
        tokens = tokenizer.tokenize(tf.constant(list(texts[start : start + batch])))
        norm = tokens.with_flat_values(normalise(tokens.flat_values, lowercase, digits))
        out += [[t.decode("utf-8") for t in row] for row in norm.to_list()]
    return out
