"""SpecAugment (Park et al., 2019) without time warping: random bands of mel bins and
runs of frames set to 0, the mean of normalised features, while training only.

Masks are drawn per utterance and only inside its valid frames, so padding stays 0 and a
short utterance is not wiped out: a time mask is at most `max_time_fraction` of the
utterance's own length.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfmodels.speech.config import CTCRecognizerConfig


@keras.saving.register_keras_serializable(package="tfmodels")
class SpecAugment(keras.layers.Layer):
    """Features `[B, F, M]` (and valid frame lengths `[B]`) -> the same shape, masked when
    `training=True`, unchanged otherwise.

    `freq_masks` bands of 0 to `freq_width` mel bins and `time_masks` runs of 0 to
    `min(time_width, max_time_fraction * length)` frames, each at a uniform position.
    """

    def __init__(
        self,
        freq_masks: int = 2,
        freq_width: int = 8,
        time_masks: int = 2,
        time_width: int = 20,
        max_time_fraction: float = 0.2,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.freq_masks = int(freq_masks)
        self.freq_width = int(freq_width)
        self.time_masks = int(time_masks)
        self.time_width = int(time_width)
        self.max_time_fraction = float(max_time_fraction)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def _bands(
        self, count: int, max_width: tf.Tensor, extent: tf.Tensor, size: tf.Tensor
    ) -> tf.Tensor:
        """`[B, size]` True inside any of `count` random bands per row, each of width
        uniform in `[0, max_width]` and lying within the first `extent` positions."""
        batch = tf.shape(max_width)[0]
        uniform = keras.random.uniform((batch, count, 2), seed=self.seed_generator)
        width = tf.cast(tf.floor(uniform[..., 0] * (max_width[:, None] + 1.0)), tf.int32)
        room = tf.cast(extent[:, None], tf.float32) - tf.cast(width, tf.float32)
        start = tf.cast(tf.floor(uniform[..., 1] * (tf.maximum(room, 0.0) + 1.0)), tf.int32)
        positions = tf.range(size)[None, None, :]
        inside = (positions >= start[..., None]) & (positions < (start + width)[..., None])
        return tf.reduce_any(inside, axis=1)

    def call(self, features, lengths=None, training=None):
        if not training or (self.freq_masks == 0 and self.time_masks == 0):
            return features
        shape = tf.shape(features)
        batch, frames, bins = shape[0], shape[1], shape[2]
        if lengths is None:
            lengths = tf.fill([batch], frames)
        lengths = tf.cast(lengths, tf.int32)
        in_time = tf.zeros([batch, frames], tf.bool)
        in_freq = tf.zeros([batch, bins], tf.bool)
        if self.freq_masks:
            width = tf.fill([batch], float(self.freq_width))
            in_freq = self._bands(self.freq_masks, width, tf.fill([batch], bins), bins)
        if self.time_masks:
            limit = tf.floor(self.max_time_fraction * tf.cast(lengths, tf.float32))
            width = tf.minimum(float(self.time_width), limit)
            in_time = self._bands(self.time_masks, width, lengths, frames)
        masked = in_time[:, :, None] | in_freq[:, None, :]
        return tf.where(masked, tf.zeros_like(features), features)

    def compute_output_shape(self, features_shape, lengths_shape=None):
        return features_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "freq_masks": self.freq_masks,
            "freq_width": self.freq_width,
            "time_masks": self.time_masks,
            "time_width": self.time_width,
            "max_time_fraction": self.max_time_fraction,
            "seed": self.seed,
        }


def spec_augment_from_config(
    config: CTCRecognizerConfig, seed: int | None = None, name: str = "spec_augment"
) -> SpecAugment | None:
    """The masking `config` asks for, or None when it asks for no mask."""
    if not (config.freq_masks or config.time_masks):
        return None
    return SpecAugment(
        config.freq_masks,
        config.freq_width,
        config.time_masks,
        config.time_width,
        seed=seed,
        name=name,
    )
