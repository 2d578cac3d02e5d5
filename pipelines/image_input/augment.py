"""Random translation of image batches shared by the image pipelines: the classifier's
random pad-and-crop layer and the autoencoder's per-image shifts."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfpipelines")
class RandomPadCrop(keras.layers.Layer):
    """Pad by `padding` pixels (zeros) and crop back at a random offset, per image.

    The classic CIFAR "random crop with padding 4": a random translation of up to
    `padding` pixels, done with two gathers so it stays cheap and XLA-compilable.
    """

    def __init__(self, padding: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_jit = True

    def call(self, images, training=None):
        if not training or self.padding <= 0:
            return images
        offsets = keras.random.randint(
            (tf.shape(images)[0], 2),
            0,
            2 * self.padding + 1,
            seed=self.seed_generator,
            dtype="int32",
        )
        return pad_crop(images, self.padding, offsets)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "padding": self.padding, "seed": self.seed}


def pad_crop(images: tf.Tensor, padding: int, offsets: tf.Tensor) -> tf.Tensor:
    """`[B, H, W, C]` images padded by `padding` zeros and cropped back at `offsets`
    (`[B, 2]` int32 row and column, 0 to 2 * padding): each moved by offset - padding."""
    shape = tf.shape(images)
    padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    rows = offsets[:, :1] + tf.range(shape[1])[None, :]  # [batch, height]
    cols = offsets[:, 1:] + tf.range(shape[2])[None, :]  # [batch, width]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)
