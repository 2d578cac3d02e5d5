"""Linear-chain CRF over a tagger's per-position logits: learned tag-to-tag transitions,
trained by the sequence's negative log-likelihood (the forward algorithm), decoded by
`ConstrainedViterbi` with the same transitions.

A softmax tagger scores each position alone; the CRF scores whole tag sequences, so it
learns that `I-toloc.city_name` follows `B-toloc.city_name` and how likely each label is
after each other one. Transitions are `[K + 1, K + 1]`: the extra last row scores the
start of a sequence and the extra last column its end, the layout of tensorflow-text's
Viterbi op.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfmodels")
class CRFTransitions(keras.layers.Layer):
    """Identity on `[B, T, K]` logits that owns the CRF's `[K + 1, K + 1]` transitions.

    It sits after the tag head so the transitions are weights of the model (saved,
    restored, averaged by EMA) and reach the loss and the decoder through `crf_loss`.
    """

    def __init__(self, num_tags: int, **kwargs):
        super().__init__(**kwargs)
        self.num_tags = int(num_tags)
        self.supports_masking = True

    def build(self, input_shape):
        self.transitions = self.add_weight(
            shape=(self.num_tags + 1, self.num_tags + 1),
            initializer="zeros",
            name="transitions",
            dtype="float32",
        )

    def call(self, logits):
        return logits

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_tags": self.num_tags}


def crf_negative_log_likelihood(logits, tags, transitions):
    """`[B]` negative log-likelihood of the tag sequences `tags` (`[B, T]`, -1 beyond each
    sequence) under per-position `logits` `[B, T, K]` and `transitions` `[K + 1, K + 1]`.

    Empty sequences cost 0.
    """
    logits = tf.cast(logits, tf.float32)
    num_tags = tf.shape(logits)[-1]
    inner = transitions[:num_tags, :num_tags]
    start, end = transitions[num_tags, :num_tags], transitions[:num_tags, num_tags]
    tags = tf.cast(tags, tf.int32)
    mask = tags >= 0
    lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
    gold = tf.maximum(tags, 0)
    maskf = tf.cast(mask, tf.float32)

    unary = tf.reduce_sum(tf.gather(logits, gold, batch_dims=2) * maskf, axis=1)
    pairs = tf.gather_nd(inner, tf.stack([gold[:, :-1], gold[:, 1:]], axis=-1))
    binary = tf.reduce_sum(pairs * maskf[:, 1:], axis=1)
    last = tf.gather(gold, tf.maximum(lengths - 1, 0), batch_dims=1)
    score = unary + binary + tf.gather(start, gold[:, 0]) + tf.gather(end, last)

    # Forward algorithm: alpha[b, j] = log-sum of every path's score ending in tag j.
    def step(alpha, inputs):
        logit_t, mask_t = inputs
        new = tf.reduce_logsumexp(alpha[:, :, None] + inner[None], axis=1) + logit_t
        return tf.where(mask_t[:, None], new, alpha)

    alpha = tf.foldl(
        step,
        (tf.transpose(logits[:, 1:], [1, 0, 2]), tf.transpose(mask[:, 1:])),
        initializer=start[None] + logits[:, 0],
    )
    log_partition = tf.reduce_logsumexp(alpha + end[None], axis=1)
    return tf.where(lengths > 0, log_partition - score, 0.0)


class CRFLoss(keras.losses.Loss):
    """Sequence negative log-likelihood under the transitions of `layer`, spread evenly
    over each sequence's positions: with per-position sample weights (1 on real positions)
    and `mean_with_sample_weight` it is the mean per position, the scale of a per-position
    cross-entropy, so a joint loss keeps its balance.

    `y_true` is `[B, T]` tag ids with -1 beyond each sequence.
    """

    def __init__(
        self,
        layer: CRFTransitions,
        name: str = "crf_loss",
        reduction: str = "mean_with_sample_weight",
    ):
        super().__init__(name=name, reduction=reduction)
        self.layer = layer

    def call(self, y_true, y_pred):
        nll = crf_negative_log_likelihood(y_pred, y_true, self.layer.transitions)
        mask = tf.cast(tf.cast(y_true, tf.int32) >= 0, tf.float32)
        length = tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)
        return nll[:, None] * mask / length
