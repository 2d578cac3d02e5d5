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
# A live hypothesis cut short by early stopping: below every real score, so it is never
# chosen, and above every disallowed token's (`_NEG`), so its [PAD] steps stay in the beam.
_CUT = _NEG / 2


def length_penalty(lengths: tf.Tensor, alpha: float) -> tf.Tensor:
    """GNMT's ((5 + n) / 6) ** alpha."""
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, alpha)


def _allowed(
    log_probs: tf.Tensor, finished: tf.Tensor, force_end: tf.Tensor, pad_id: int, end_id: int
) -> tf.Tensor:
    """Finished rows may only add [PAD] at no cost; rows at their bound only [END]."""
    vocab = tf.shape(log_probs)[-1]
    pad_only = tf.where(tf.range(vocab) == pad_id, 0.0, _NEG)
    end_only = tf.where(tf.range(vocab) == end_id, log_probs, _NEG)
    log_probs = tf.where(force_end[..., None], end_only, log_probs)
    return tf.where(finished[..., None], pad_only, log_probs)


def _output_lengths(tokens: tf.Tensor, pad_id: int) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(tf.not_equal(tokens, pad_id), tf.int32), axis=-1)


def greedy_decode(
    step: Step,
    static: Any,
    state: Any,
    max_lengths: tf.Tensor,
    start_id: int,
    end_id: int,
    pad_id: int = 0,
    alpha: float = 0.0,
) -> tuple[tf.Tensor, tf.Tensor]:
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

    start = (
        tf.constant(0),
        tf.fill([batch], start_id),
        state,
        tf.zeros([batch, 0], tf.int32),
        tf.zeros([batch]),
        max_lengths <= 0,
    )
    invariants = (
        tf.TensorShape([]),
        tf.TensorShape([None]),
        _invariants(state),
        tf.TensorShape([None, None]),
        tf.TensorShape([None]),
        tf.TensorShape([None]),
    )
    _, _, _, tokens, scores, _ = tf.while_loop(cond, body, start, shape_invariants=invariants)
    return tokens, scores / length_penalty(_output_lengths(tokens, pad_id), alpha)


def _invariants(state: Any) -> Any:
    """The loop's shape invariants for `state`: a dimension that starts empty (a cache of
    the tokens so far) grows."""
    return tf.nest.map_structure(
        lambda t: tf.TensorShape([None if d == 0 else d for d in t.shape]), state
    )


def _repeat(tree: Any, times: int) -> Any:
    return tf.nest.map_structure(lambda t: tf.repeat(t, times, axis=0), tree)


STOPS = ("bound", "top", "none")


def _stop_early(
    tokens: tf.Tensor,
    scores: tf.Tensor,
    finished: tf.Tensor,
    bound_penalty: tf.Tensor,
    pad_id: int,
    alpha: float,
    top: bool,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Ends every hypothesis of the sentences whose best ended hypothesis no live one can
    beat (with `top`, also of those whose most probable hypothesis has ended); the live
    ones cut short lose (score `_CUT`). `bound_penalty` `[B, 1]`: the length penalty at
    each sentence's length bound, the most a live hypothesis's can grow to."""
    lengths = _output_lengths(tokens, pad_id)  # [B, k]
    ended_best = tf.reduce_max(
        tf.where(finished, scores / length_penalty(lengths, alpha), -float("inf")), axis=-1
    )
    most_penalty = tf.maximum(length_penalty(lengths + 1, alpha), bound_penalty)
    live_best = tf.reduce_max(tf.where(finished, -float("inf"), scores / most_penalty), axis=-1)
    done = ended_best >= live_best
    if top:
        done |= finished[:, 0]  # hypotheses stay sorted by log-probability (top_k)
    done = done[:, None]
    return tf.where(done & ~finished, _CUT, scores), finished | done


def beam_search(
    step: Step,
    static: Any,
    state: Any,
    max_lengths: tf.Tensor,
    start_id: int,
    end_id: int,
    beam_width: int,
    pad_id: int = 0,
    alpha: float = 0.0,
    stop: str = "bound",
) -> tuple[tf.Tensor, tf.Tensor]:
    """The best of `beam_width` hypotheses per sentence by length-normalised score:
    (tokens [B, L], scores [B]). Hypotheses are ranked by log-probability while
    decoding; the length penalty chooses among the final ones. When a sentence is done:
    `stop` "bound" once none of its live hypotheses can still beat its best ended one
    (their log-probability only falls, and the penalty grows at most to that of the length
    bound): the result of running on, or better; "top" also once its most probable
    hypothesis has ended (OpenNMT-py's rule: faster, and with a length penalty it may
    miss a longer hypothesis that would have won); "none" when every hypothesis has ended
    or reached the bound."""
    if stop not in STOPS:
        raise ValueError(f"beam search stop {stop!r}: one of {', '.join(STOPS)}")
    k = beam_width
    batch = tf.shape(max_lengths)[0]
    limit = tf.reduce_max(tf.concat([max_lengths, [0]], 0))
    static, state = _repeat(static, k), _repeat(state, k)
    bounds = tf.repeat(max_lengths, k)
    bound_penalty = length_penalty(max_lengths[:, None], alpha)  # once, not every step
    first = tf.concat([[0.0], tf.fill([k - 1], _NEG)], 0)

    def cond(i, last, state, tokens, scores, finished):
        return (i < limit) & ~tf.reduce_all(finished)

    def body(i, last, state, tokens, scores, finished):
        logits, state = step(tf.reshape(last, [-1]), static, state, i)
        log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))
        log_probs = _allowed(log_probs, tf.reshape(finished, [-1]), i >= bounds - 1, pad_id, end_id)
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
        if stop != "none":
            scores, finished = _stop_early(
                tokens, scores, finished, bound_penalty, pad_id, alpha, top=stop == "top"
            )
        return i + 1, token, state, tokens, scores, finished

    start = (
        tf.constant(0),
        tf.fill([batch, k], start_id),
        state,
        tf.zeros([batch, k, 0], tf.int32),
        tf.tile(first[None], [batch, 1]),
        tf.tile((max_lengths <= 0)[:, None], [1, k]),
    )
    invariants = (
        tf.TensorShape([]),
        tf.TensorShape([None, k]),
        _invariants(state),
        tf.TensorShape([None, k, None]),
        tf.TensorShape([None, k]),
        tf.TensorShape([None, k]),
    )
    _, _, _, tokens, scores, _ = tf.while_loop(cond, body, start, shape_invariants=invariants)
    normalised = scores / length_penalty(_output_lengths(tokens, pad_id), alpha)
    best = tf.argmax(normalised, axis=-1, output_type=tf.int32)
    return (tf.gather(tokens, best, batch_dims=1), tf.gather(normalised, best, batch_dims=1))
