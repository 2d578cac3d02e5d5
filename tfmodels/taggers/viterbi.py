"""Viterbi decoding constrained to valid tag sequences (tensorflow-text's op), with the
transition masks of the B/M/E/S and BIO tagging schemes.

Masks are `[K + 1, K + 1]` booleans: `mask[i, j]` allows tag `j` right after tag `i`; the
extra last row is the start of a sequence and the extra last column its end.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

BMES = ("B", "M", "E", "S")


def bmes_transitions() -> np.ndarray:
    """B and M must be followed by M or E; a word starts (B or S) only after E, S or start."""
    b, m, e, s, edge = 0, 1, 2, 3, 4
    mask = np.zeros((5, 5), dtype=bool)
    for prev in (b, m):
        mask[prev, [m, e]] = True
    for prev in (e, s, edge):
        mask[prev, [b, s]] = True
    mask[[e, s], edge] = True
    return mask


def bio_transitions(tags: Sequence[str]) -> np.ndarray:
    """`I-x` only after `B-x` or `I-x`; anything may end a sequence. Tags other than
    `O`, `B-*`, `I-*` (padding, say) may follow and precede anything."""
    n = len(tags)
    mask = np.ones((n + 1, n + 1), dtype=bool)
    for j, tag in enumerate(tags):
        if not tag.startswith("I-"):
            continue
        kind = tag[2:]
        for i, prev in enumerate(tags):
            mask[i, j] = prev in (f"B-{kind}", f"I-{kind}")
        mask[n, j] = False  # no I- at the start
    return mask


class ConstrainedViterbi(keras.layers.Layer):
    """Best valid tag sequence for per-position tag logits `[B, T, K]` and `lengths [B]`.

    Without `transitions` the logits are scored as log-softmax probabilities and every
    allowed transition is free; with a CRF's `[K + 1, K + 1]` `transitions` the score is
    the CRF's (raw logits plus transitions). Returns `[B, T]` int32 tag ids, -1 beyond
    each length.
    """

    def __init__(self, allowed: np.ndarray, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.allowed = np.asarray(allowed, dtype=bool)
        self.supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return None

    def call(self, logits, lengths, transitions=None):
        logits = tf.cast(logits, tf.float32)
        scores = tf.nn.log_softmax(logits, axis=-1) if transitions is None else logits
        lengths = tf.cast(lengths, tf.int32)
        ragged = tf.RaggedTensor.from_tensor(scores, lengths=lengths)
        weights = None if transitions is None else tf.cast(transitions, tf.float32)
        path = tf_text.viterbi_constrained_sequence(
            ragged,
            transition_weights=weights,
            allowed_transitions=tf.constant(self.allowed),
            use_log_space=True,
            use_start_and_end_states=True,
        )
        return tf.cast(path, tf.int32).to_tensor(default_value=-1, shape=tf.shape(logits)[:2])

    def get_config(self):
        return {**super().get_config(), "allowed": self.allowed.tolist()}


def tag_by_length(
    rows: tf.RaggedTensor,
    tag_fn,
    boundaries=(4, 8, 12, 16, 24, 32, 48, 64, 96, 128),
    dtype=tf.int32,
):
    """Run `tag_fn` (ragged `[n, (T)]` rows -> dense `[n, T']` tags) on groups of rows of
    similar length, and return ragged tags (`dtype`) aligned with `rows`.

    Recurrent layers pay for the longest row of a batch; grouping short rows with short
    ones keeps that padding small, which is most of the serving cost on a CPU. The groups
    are the iterations of a `tf.while_loop` (which may run them side by side), so the graph
    holds one copy of `tag_fn` (the model) rather than one per group: tracing, exporting
    and loading cost what one group does.
    """
    lengths = rows.row_lengths()
    bounds = tf.constant(boundaries, lengths.dtype)
    group = tf.searchsorted(bounds, lengths, side="left")
    order = tf.argsort(group, stable=True)  # rows by group, in input order within one
    counts = tf.math.bincount(tf.cast(group, tf.int32), minlength=len(boundaries) + 1)
    starts = tf.cumsum(counts, exclusive=True)

    def body(g, pieces):
        index = order[starts[g] : starts[g] + counts[g]]

        def tagged():
            tags = tag_fn(tf.gather(rows, index))
            flat = tf.RaggedTensor.from_tensor(tags, lengths=tf.gather(lengths, index))
            return tf.cast(flat.flat_values, dtype)

        # An empty group skips the model (a request of one sentence fills one group).
        flat = tf.cond(counts[g] > 0, tagged, lambda: tf.zeros([0], dtype))
        return g + 1, pieces.write(g, flat)

    pieces = tf.TensorArray(
        dtype, size=len(boundaries) + 1, infer_shape=False, element_shape=tf.TensorShape([None])
    )
    _, pieces = tf.while_loop(
        lambda g, _: g < len(boundaries) + 1,
        body,
        (tf.constant(0), pieces),
        parallel_iterations=len(boundaries) + 1,
    )
    by_group = tf.RaggedTensor.from_row_lengths(pieces.concat(), tf.gather(lengths, order))
    return tf.gather(by_group, tf.math.invert_permutation(order))
