"""What every encoder-decoder translator shares: teacher-forced training on
`{"source", "target"}` ids, and decoding one token at a time from cached states."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tfmodels.translation.decoding import beam_search, greedy_decode
from tfmodels.translation.subwords import END_ID, PAD_ID, START_ID


class Logits(keras.layers.Dense):
    """The untied output projection: float32 logits for the loss and the search whatever
    the training's precision, computed in float32 or, with `float32_logits=False`, in the
    compute precision (bfloat16 under mixed_bfloat16) and cast after."""

    def __init__(self, units: int, float32_logits: bool = True, **kwargs):
        kwargs.setdefault("dtype", "float32" if float32_logits else None)
        super().__init__(units, **kwargs)

    def call(self, inputs):
        return keras.ops.cast(super().call(inputs), "float32")


class Seq2Seq(keras.Model):
    """Subclasses build `call({"source": [B, S], "target": [B, T]}) -> logits [B, T, V]`
    (the target is the reference shifted right, [START] first: teacher forcing) and the
    decoding pieces: `start(source) -> (static, state)`, `step(tokens [N],
    static, state, index) -> (logits [N, V], state)` and `cross_attention(source, target)
    -> [B, T, S]` weights (averaged over heads where there are several)."""

    def start(self, source: tf.Tensor) -> tuple[Any, Any]:
        raise NotImplementedError

    def step(
        self, tokens: tf.Tensor, static: Any, state: Any, index: tf.Tensor
    ) -> tuple[tf.Tensor, Any]:
        raise NotImplementedError

    def cross_attention(self, source: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def translate(
        self,
        source: tf.Tensor,
        max_lengths: tf.Tensor,
        beam_width: int = 1,
        alpha: float = 0.0,
        greedy: bool = False,
        stop: str = "bound",
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Token ids `[B, S]` (0-padded) -> (output ids `[B, L]` ending in [END], padded
        with [PAD]; length-normalised log-probabilities `[B]`), at most `max_lengths`
        tokens each (0: nothing). `greedy`: the greedy decoder, else beam search (`stop`:
        when a sentence is done, see `beam_search`)."""
        max_lengths = tf.cast(max_lengths, tf.int32)
        static, state = self.start(source)
        if greedy:
            return greedy_decode(
                self.step, static, state, max_lengths, START_ID, END_ID, PAD_ID, alpha
            )
        return beam_search(
            self.step, static, state, max_lengths, START_ID, END_ID, beam_width, PAD_ID, alpha, stop
        )


def padding_mask(ids: tf.Tensor) -> tf.Tensor:
    return tf.not_equal(ids, PAD_ID)
