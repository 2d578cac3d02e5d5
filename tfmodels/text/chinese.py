"""Chinese word-segmentation preprocessing as Keras layers, so the exported graph takes raw
text: splitting into units, corpus normalisation, character/bigram ids, lexicon features,
and joining tagged units back into words.

A *unit* is what the tagger labels: one character, or, with normalisation on, a whole run
of digits (`2001`, `55.6`, `25%`) or Latin letters, which the SIGHAN corpora shared with
this project write as `0` and `X`. Units keep their original text, so the words returned
concatenate to exactly the input without its whitespace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import tensorflow as tf

# Code points Python's str.split() treats as whitespace: removed, never part of a unit.
WHITESPACE = (
    9,
    10,
    11,
    12,
    13,
    28,
    29,
    30,
    31,
    32,
    133,
    160,
    5760,
    *range(8192, 8203),
    8232,
    8233,
    8239,
    8287,
    12288,
)
PAD, OOV = "", "[UNK]"
BOS, EOS = "<s>", "</s>"
TAG_B, TAG_M, TAG_E, TAG_S = 0, 1, 2, 3
_OTHER, _NUMBER, _LATIN = 0, 1, 2


def _in(codes: tf.Tensor, *ranges: tuple[int, int]) -> tf.Tensor:
    hit = tf.zeros_like(codes, tf.bool)
    for low, high in ranges:
        hit |= (codes >= low) & (codes <= high)
    return hit


def _unit_classes(codes: tf.Tensor, row_starts: tf.Tensor, row_limits: tf.Tensor) -> tf.Tensor:
    """Per code point: part of a number (digits, inner `.`, a trailing `%`), of a Latin
    run, or other. `codes` is flat; the row bounds stop runs at sentence edges."""
    n = tf.size(codes)
    pos = tf.range(n, dtype=row_starts.dtype)
    prev = tf.gather(codes, tf.maximum(pos - 1, 0))
    nxt = tf.gather(codes, tf.minimum(pos + 1, tf.cast(tf.maximum(n - 1, 0), pos.dtype)))
    has_prev = pos > row_starts
    has_next = pos + 1 < row_limits
    digit = lambda c: _in(c, (0x30, 0x39), (0xFF10, 0xFF19))  # noqa: E731
    dot = (codes == 0x2E) | (codes == 0xFF0E)
    percent = (codes == 0x25) | (codes == 0xFF05)
    number = (
        digit(codes)
        | (dot & has_prev & digit(prev) & has_next & digit(nxt))
        | (percent & has_prev & digit(prev))
    )
    latin = _in(codes, (0x41, 0x5A), (0x61, 0x7A), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A))
    return tf.where(number, _NUMBER, tf.where(latin, _LATIN, _OTHER))


def split_units(text: tf.Tensor, normalise: bool) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """Strings `[B]` -> (original units, normalised units), both ragged `[B, (U)]`.

    Works on code points (no regex, so NUL and any other character survive): whitespace is
    dropped, every other code point is a unit, except that with `normalise` a run of a
    number or of Latin letters is one unit, normalised to `0` or `X`, and full-width ASCII
    is normalised to half-width.
    """
    chars = tf.strings.unicode_split(text, "UTF-8", errors="replace")
    codes = tf.strings.unicode_decode(text, "UTF-8", errors="replace")
    flat_codes = codes.flat_values
    rows = codes.value_rowids()
    keep = tf.logical_not(
        tf.reduce_any(
            tf.equal(flat_codes[:, None], tf.constant(WHITESPACE, tf.int32)[None, :]), axis=1
        )
    )
    starts = tf.gather(codes.row_starts(), rows)
    limits = tf.gather(codes.row_limits(), rows)
    if normalise:
        classes = _unit_classes(flat_codes, starts, limits)
        prev_class = tf.gather(
            classes, tf.maximum(tf.range(tf.size(classes), dtype=rows.dtype) - 1, 0)
        )
        prev_keep = tf.gather(keep, tf.maximum(tf.range(tf.size(keep), dtype=rows.dtype) - 1, 0))
        at_row_start = tf.range(tf.size(keep), dtype=rows.dtype) == starts
        begins = keep & ((classes == _OTHER) | at_row_start | ~prev_keep | (classes != prev_class))
    else:
        classes = tf.zeros_like(flat_codes)
        begins = keep
    unit_ids = tf.cumsum(tf.cast(begins, tf.int64)) - 1
    num_units = tf.reduce_sum(tf.cast(begins, tf.int64))
    kept_ids = tf.boolean_mask(unit_ids, keep)
    flat_units = tf.strings.unsorted_segment_join(
        tf.boolean_mask(chars.flat_values, keep), kept_ids, num_units
    )
    per_row = tf.math.unsorted_segment_sum(tf.cast(begins, tf.int64), rows, codes.nrows())
    units = tf.RaggedTensor.from_row_lengths(flat_units, per_row)
    if not normalise:
        return units, units
    head_codes = tf.boolean_mask(flat_codes, begins)
    head_classes = tf.boolean_mask(classes, begins)
    halfwidth = tf.where(_in(head_codes, (0xFF01, 0xFF5E)), head_codes - 0xFEE0, head_codes)
    single = tf.strings.unicode_encode(tf.expand_dims(halfwidth, 1), "UTF-8")
    flat_norm = tf.where(
        head_classes == _NUMBER, "0", tf.where(head_classes == _LATIN, "X", single)
    )
    return units, units.with_flat_values(flat_norm)


def bmes_tags(word_units: tf.RaggedTensor) -> tf.RaggedTensor:
    """Ragged `[W, (U)]` units of each word -> B/M/E/S tag ids of the same shape."""
    lengths = word_units.row_lengths()
    position = tf.range(tf.size(word_units.flat_values, out_type=tf.int64)) - tf.gather(
        word_units.row_starts(), word_units.value_rowids()
    )
    length = tf.gather(lengths, word_units.value_rowids())
    tags = tf.where(
        length == 1,
        TAG_S,
        tf.where(position == 0, TAG_B, tf.where(position == length - 1, TAG_E, TAG_M)),
    )
    return word_units.with_flat_values(tf.cast(tags, tf.int32))


def words_from_tags(units: tf.RaggedTensor, tags: tf.RaggedTensor) -> tf.RaggedTensor:
    """Join units into words: a word starts at every B or S (and at each row's start)."""
    flat_units, flat_tags = units.flat_values, tags.flat_values
    n = tf.size(flat_units, out_type=tf.int64)
    first_in_row = tf.range(n) == tf.gather(units.row_starts(), units.value_rowids())
    starts = (flat_tags == TAG_B) | (flat_tags == TAG_S) | first_in_row
    word_ids = tf.cumsum(tf.cast(starts, tf.int64)) - 1
    num_words = tf.reduce_sum(tf.cast(starts, tf.int64))
    flat_words = tf.strings.unsorted_segment_join(flat_units, word_ids, num_words)
    per_row = tf.math.unsorted_segment_sum(
        tf.cast(starts, tf.int64), units.value_rowids(), units.nrows()
    )
    return tf.RaggedTensor.from_row_lengths(flat_words, per_row)


def split_clauses(units: tf.RaggedTensor, clause_end: Sequence[str]) -> tf.RaggedTensor:
    """Regroup `[B, (U)]` units into `[C, (U)]` clauses, cut after each clause-end unit.

    Flat values keep their order, so per-unit results on clauses line up with the
    sentences' own flat values. Short rows make the recurrent layers far cheaper to run.
    """
    flat = units.flat_values
    n = tf.size(flat, out_type=tf.int64)
    ends = tf.reduce_any(tf.equal(flat[:, None], tf.constant(list(clause_end))[None, :]), axis=1)
    last_in_row = tf.range(n) + 1 == tf.gather(units.row_limits(), units.value_rowids())
    cut = ends | last_in_row
    clause_ids = tf.cumsum(tf.cast(cut, tf.int64), exclusive=True)
    return tf.RaggedTensor.from_value_rowids(flat, clause_ids)


def _shifted(units: tf.RaggedTensor, offset: int, filler: str) -> tf.Tensor:
    """Flat values of `units` shifted by `offset` within each row, `filler` off the edges."""
    flat = units.flat_values
    n = tf.size(flat, out_type=tf.int64)
    pos = tf.range(n)
    rows = units.value_rowids()
    target = pos + offset
    inside = (target >= tf.gather(units.row_starts(), rows)) & (
        target < tf.gather(units.row_limits(), rows)
    )
    safe = tf.clip_by_value(target, 0, tf.maximum(n - 1, 0))
    return tf.where(inside, tf.gather(flat, safe), filler)


class SegmentationPreprocessor(keras.layers.Layer):
    """Normalised units `[B, (U)]` -> dict of padded model inputs.

    `chars` (ids, 0 = padding), `bigram_next`/`bigram_prev` (ids of the unit joined with its
    neighbour) and `lexicon` (`[B, U, 2 * (max_word - 1)]`: the weight of the dictionary word
    of length n that begins / ends here, 0 if none, n = 2..max_word).
    """

    def __init__(
        self,
        chars: Sequence[str],
        bigrams: Sequence[str] = (),
        lexicon: Mapping[str, float] | Sequence[str] = (),
        max_word: int = 4,
        **kwargs,
    ):
        super().__init__(trainable=False, **kwargs)
        self.max_word = max_word
        self.char_lookup = keras.layers.StringLookup(
            vocabulary=list(chars), mask_token=PAD, oov_token=OOV, name="char_lookup"
        )
        self.use_bigrams = bool(bigrams)
        self.bigram_lookup = keras.layers.StringLookup(
            vocabulary=list(bigrams) or ["<none>"],
            mask_token=PAD,
            oov_token=OOV,
            name="bigram_lookup",
        )
        self.use_lexicon = bool(lexicon)
        weights = dict(lexicon) if isinstance(lexicon, Mapping) else dict.fromkeys(lexicon, 1.0)
        self.lexicon_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(weights) or ["<none>"]),
                tf.constant(list(weights.values()) or [0.0], tf.float32),
            ),
            default_value=0.0,
        )

    @property
    def num_lexicon_features(self) -> int:
        return 2 * (self.max_word - 1)

    def _lexicon(self, units: tf.RaggedTensor) -> tf.Tensor:
        flat = units.flat_values
        n = tf.size(flat, out_type=tf.int64)
        pos = tf.range(n)
        rows = units.value_rowids()
        starts = tf.gather(units.row_starts(), rows)
        limits = tf.gather(units.row_limits(), rows)
        safe = lambda i: tf.clip_by_value(i, 0, tf.maximum(n - 1, 0))  # noqa: E731
        begins, ends = [], []
        for width in range(2, self.max_word + 1):
            gram = tf.strings.reduce_join(
                tf.stack([tf.gather(flat, safe(pos + k)) for k in range(width)], axis=1), axis=1
            )
            inside = pos + width - 1 < limits
            hit = tf.where(inside, self.lexicon_table.lookup(gram), 0.0)
            back = pos - (width - 1)
            ends.append(tf.where(back >= starts, tf.gather(hit, safe(back)), 0.0))
            begins.append(hit)
        return tf.stack(begins + ends, axis=1)

    def call(self, units: tf.RaggedTensor) -> dict[str, tf.Tensor]:
        def dense(flat_values, default):
            padded = units.with_flat_values(flat_values).to_tensor(default)
            # At least one position, so a batch of empty strings still runs through the RNN.
            short = tf.maximum(1 - tf.shape(padded)[1], 0)
            pads = [[0, 0], [0, short]] + [[0, 0]] * (len(padded.shape) - 2)
            return tf.pad(padded, pads, constant_values=default)

        flat = units.flat_values
        out = {"chars": dense(tf.cast(self.char_lookup(flat), tf.int32), 0)}
        if self.use_bigrams:
            nxt = tf.strings.join([flat, _shifted(units, 1, EOS)])
            prv = tf.strings.join([_shifted(units, -1, BOS), flat])
            out["bigram_next"] = dense(tf.cast(self.bigram_lookup(nxt), tf.int32), 0)
            out["bigram_prev"] = dense(tf.cast(self.bigram_lookup(prv), tf.int32), 0)
        if self.use_lexicon:
            out["lexicon"] = dense(self._lexicon(units), 0.0)
        return out


def bigrams_of(units: Sequence[str]) -> list[str]:
    """The bigram strings the preprocessor forms for one sentence (for vocabularies)."""
    seq = [BOS, *units, EOS]
    return [a + b for a, b in zip(seq[:-1], seq[1:], strict=True)]
