"""The terms autoencoders are trained on, per image unless said otherwise.

Each returns a float32 `[B]` vector of per-image values (or a scalar for batch-level
penalties); `replica_mean` turns them into a training loss scaled the way Keras' own
losses are under `tf.distribute` (summed over replicas, so divided by their number here).
"""

from __future__ import annotations

import math

import tensorflow as tf

_EPSILON = 1e-6


def per_replica(value: tf.Tensor) -> tf.Tensor:
    """`value` divided by the replicas in sync, as Keras scales a loss under tf.distribute."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return value / replicas if replicas > 1 else value


def replica_mean(per_image: tf.Tensor) -> tf.Tensor:
    """Mean over the batch, scaled for the replicas (see `per_replica`)."""
    return per_replica(tf.reduce_mean(per_image))


def _pixels_axes(x: tf.Tensor) -> list[int]:
    return list(range(1, len(x.shape)))


def squared_error(target: tf.Tensor, reconstruction: tf.Tensor) -> tf.Tensor:
    """Mean squared error over each image's pixels (values in [0, 1])."""
    diff = tf.cast(reconstruction, tf.float32) - tf.cast(target, tf.float32)
    return tf.reduce_mean(tf.square(diff), axis=_pixels_axes(diff))


def binary_crossentropy(target: tf.Tensor, reconstruction: tf.Tensor) -> tf.Tensor:
    """Mean binary cross-entropy over each image's pixels (probabilities in [0, 1])."""
    p = tf.clip_by_value(tf.cast(reconstruction, tf.float32), _EPSILON, 1 - _EPSILON)
    t = tf.cast(target, tf.float32)
    ce = -(t * tf.math.log(p) + (1 - t) * tf.math.log(1 - p))
    return tf.reduce_mean(ce, axis=_pixels_axes(ce))


def bernoulli_nll(target: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """-log p(x | logits) in nats, summed over each image's pixels (Bernoulli pixels)."""
    ce = tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.cast(target, tf.float32), logits=tf.cast(logits, tf.float32)
    )
    return tf.reduce_sum(ce, axis=_pixels_axes(ce))


def gaussian_nll(target: tf.Tensor, mean: tf.Tensor, log_sigma: tf.Tensor) -> tf.Tensor:
    """-log N(x; mean, sigma^2) in nats, summed over each image's pixels (one sigma)."""
    z = (tf.cast(target, tf.float32) - tf.cast(mean, tf.float32)) * tf.exp(-log_sigma)
    per_pixel = 0.5 * math.log(2 * math.pi) + log_sigma + 0.5 * tf.square(z)
    return tf.reduce_sum(per_pixel, axis=_pixels_axes(per_pixel))


def gaussian_kl(z_mean: tf.Tensor, z_log_var: tf.Tensor) -> tf.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) in nats per image, summed over the code."""
    mean = tf.cast(z_mean, tf.float32)
    log_var = tf.cast(z_log_var, tf.float32)
    return 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(log_var) - 1.0 - log_var, axis=-1)


def l1_activity(code: tf.Tensor) -> tf.Tensor:
    """Sum of absolute code activations, per image: few units should fire at once."""
    return tf.reduce_sum(tf.abs(tf.cast(code, tf.float32)), axis=-1)


def kl_sparsity(code: tf.Tensor, target: float) -> tf.Tensor:
    """Sum over code units of KL(target || mean activation over the batch): each unit
    (a sigmoid) should be on for about `target` of the images. A batch-level scalar."""
    rate = tf.clip_by_value(
        tf.reduce_mean(tf.cast(code, tf.float32), axis=0), _EPSILON, 1 - _EPSILON
    )
    return tf.reduce_sum(
        target * tf.math.log(target / rate) + (1 - target) * tf.math.log((1 - target) / (1 - rate))
    )


def fine_detail(x: tf.Tensor) -> tf.Tensor:
    """Mean squared difference between neighbouring pixels (across, plus down), per image:
    how busy an image is, and so how much reconstruction error it carries before any model
    sees it."""
    x = tf.cast(x, tf.float32)
    across = tf.reduce_mean(tf.square(x[:, :, 1:] - x[:, :, :-1]), axis=_pixels_axes(x))
    down = tf.reduce_mean(tf.square(x[:, 1:] - x[:, :-1]), axis=_pixels_axes(x))
    return across + down


def relative_error(
    error: tf.Tensor, target: tf.Tensor, floor: float = 1e-4, power: float = 1.0
) -> tf.Tensor:
    """A per-image `squared_error` over the image's `fine_detail` (plus `floor`, for flat
    images) to the `power`: the error relative to what the image's own complexity explains.

    A plain error ranks simple anomalies (a '1' among '8's, a plain sky among cars) as
    normal because they are easy to rebuild for any model; the ratio asks how much worse
    the model does than the image's busyness alone predicts (the input-complexity
    correction of Serra et al., ICLR 2020, with the pixel differences in place of a
    compressor's bits). `power` weighs the detail against the error (in logs: log error -
    power * log detail); below 1 it trusts the detail less, as for colour photographs,
    whose fine detail is partly noise."""
    return error / tf.pow(fine_detail(target) + floor, power)
