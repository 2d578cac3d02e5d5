"""Greedy and beam-search decoding as graph ops (`tf.while_loop`), for the serving graph.

Both drive a model's one-token step, `step(tokens [N], static, state, index) -> (logits
[N, V], state)`: `static` holds what never changes while decoding (the encoded source),
`state` what does (decoder caches), each a nest of tensors with N leading. Both stop when
every sentence has ended or at its own length bound (`max_lengths`, where [END] is
forced), give [PAD] after [END] and the score `log p(output) / lp(length)` with GNMT's
length penalty lp(n) = ((5 + n) / 6) ** alpha (alpha 0: the plain log-probability).
Beam search keeps `beam_width` hypotheses per sentence and reorders the `state` with them;
with one beam it is greedy decoding, token for token and score for score.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf

Step = Callable[[tf.Tensor, Any, Any, tf.Tensor], tuple[tf.Tensor, Any]]
_NEG = -1e9


def length_penalty(lengths: tf.Tensor, alpha: float) -> tf.Tensor:
    """GNMT's ((5 + n) / 6) ** alpha."""
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, alpha)


def _allowed(log_probs: tf.Tensor, finished: tf.Tensor, force_end: tf.Tensor,
             pad_id: int, end_id: int) -> tf.Tensor:
    """Finished rows may only add [PAD] at no cost; rows at their bound only [END]."""
    vocab = tf.shape(log_probs)[-1]
    pad_only = tf.where(tf.range(vocab) == pad_id, 0.0, _NEG)
    end_only = tf.where(tf.range(vocab) == end_id, log_probs, _NEG)
    log_probs = tf.where(force_end[..., None], end_only, log_probs)
    return tf.where(finished[..., None], pad_only, log_probs)


def _output_lengths(tokens: tf.Tensor, pad_id: int) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(tf.not_equal(tokens, pad_id), tf.int32), axis=-1)


def greedy_decode(step: Step, static: Any, state: Any, max_lengths: tf.Tensor,
                  start_id: int, end_id: int, pad_id: int = 0,
                  alpha: float = 0.0) -> tuple[tf.Tensor, tf.Tensor]:
    """The most probable token at each step: (tokens [B, L], scores [B])."""
    batch = tf.shape(max_lengths)[0]
    limit = tf.reduce_max(tf.concat([max_lengths, [0]], 0))

    def cond(i, last, state, tokens, scores, finished):
        return (i < limit) & ~tf.reduce_all(finished)

    def body(i, last, state, tokens, scores, finished):
        logits, state = step(last, static, state, i)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        log_probs = _allowed(log_probs, finished, i >= max_lengths - 1, pad_id, end_id)
        token = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
        scores += tf.gather(log_probs, token, batch_dims=1)
        finished |= tf.equal(token, end_id) | (i >= max_lengths - 1)
        tokens = tf.concat([tokens, token[:, None]], axis=-1)
        return i + 1, token, state, tokens, scores, finished

    start = (tf.constant(0), tf.fill([batch], start_id), state, tf.zeros([batch, 0], tf.int32),
             tf.zeros([batch]), max_lengths <= 0)
    invariants = (tf.TensorShape([]), tf.TensorShape([None]),
                  tf.nest.map_structure(lambda t: t.shape, state),
                  tf.TensorShape([None, None]), tf.TensorShape([None]), tf.TensorShape([None]))
    _, _, _, tokens, scores, _ = tf.while_loop(cond, body, start, shape_invariants=invariants)
    return tokens, scores / length_penalty(_output_lengths(tokens, pad_id), alpha)


def _repeat(tree: Any, times: int) -> Any:
    return tf.nest.map_structure(lambda t: tf.repeat(t, times, axis=0), tree)


def beam_search(step: Step, static: Any, state: Any, max_lengths: tf.Tensor,
                start_id: int, end_id: int, beam_width: int, pad_id: int = 0,
                alpha: float = 0.0) -> tuple[tf.Tensor, tf.Tensor]:
    """The best of `beam_width` hypotheses per sentence by length-normalised score:
    (tokens [B, L], scores [B]). Hypotheses are ranked by log-probability while
    decoding; the length penalty chooses among the final ones."""
    k = beam_width
    batch = tf.shape(max_lengths)[0]
    limit = tf.reduce_max(tf.concat([max_lengths, [0]], 0))
    static, state = _repeat(static, k), _repeat(state, k)
    bounds = tf.repeat(max_lengths, k)
    first = tf.concat([[0.0], tf.fill([k - 1], _NEG)], 0)

    def cond(i, last, state, tokens, scores, finished):
        return (i < limit) & ~tf.reduce_all(finished)

    def body(i, last, state, tokens, scores, finished):
        logits, state = step(tf.reshape(last, [-1]), static, state, i)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        log_probs = _allowed(log_probs, tf.reshape(finished, [-1]), i >= bounds - 1,
                             pad_id, end_id)
        vocab = tf.shape(log_probs)[-1]
        total = scores[..., None] + tf.reshape(log_probs, [batch, k, vocab])
        scores, index = tf.math.top_k(tf.reshape(total, [batch, k * vocab]), k=k)
        beam, token = index // vocab, tf.cast(index % vocab, tf.int32)
        flat = tf.reshape(beam + tf.range(batch)[:, None] * k, [-1])
        state = tf.nest.map_structure(lambda t: tf.gather(t, flat), state)
        tokens = tf.gather(tokens, beam, batch_dims=1)
        tokens = tf.concat([tokens, token[..., None]], axis=-1)
        ended = tf.reshape(i >= bounds - 1, [batch, k])
        finished = tf.gather(finished, beam, batch_dims=1) | tf.equal(token, end_id) | ended
        return i + 1, token, state, tokens, scores, finished

    start = (tf.constant(0), tf.fill([batch, k], start_id), state,
             tf.zeros([batch, k, 0], tf.int32), tf.tile(first[None], [batch, 1]),
             tf.tile((max_lengths <= 0)[:, None], [1, k]))
    invariants = (tf.TensorShape([]), tf.TensorShape([None, k]),
                  tf.nest.map_structure(lambda t: t.shape, state),
                  tf.TensorShape([None, k, None]), tf.TensorShape([None, k]),
                  tf.TensorShape([None, k]))
    _, _, _, tokens, scores, _ = tf.while_loop(cond, body, start,
                                               shape_invariants=invariants)
    normalised = scores / length_penalty(_output_lengths(tokens, pad_id), alpha)
    best = tf.argmax(normalised, axis=-1, output_type=tf.int32)
    return (tf.gather(tokens, best, batch_dims=1),
            tf.gather(normalised, best, batch_dims=1))
