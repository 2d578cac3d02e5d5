"""Preprocessing as Keras layers inside the model: the export takes raw 0-255 pixels.

Order: rescale to [0, 1], augment (training only: Keras' random layers are identities at
inference), then normalise per channel with the training set's mean and std.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from pipelines.images.config import ImagesDataConfig


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


def augmentation_layers(cfg: ImagesDataConfig, seed: int) -> list[keras.layers.Layer]:
    """The training-only random layers the config asks for."""
    out: list[keras.layers.Layer] = []
    if cfg.crop_padding > 0:
        out.append(RandomPadCrop(cfg.crop_padding, seed=seed, name="random_pad_crop"))
    if cfg.flip:
        out.append(keras.layers.RandomFlip("horizontal", seed=seed + 1, name="random_flip"))
    if cfg.rotation > 0:
        out.append(keras.layers.RandomRotation(cfg.rotation, seed=seed + 2, name="random_rotation"))
    if cfg.zoom > 0:
        out.append(keras.layers.RandomZoom(cfg.zoom, seed=seed + 3, name="random_zoom"))
    if cfg.contrast > 0:
        out.append(
            keras.layers.RandomContrast(
                cfg.contrast, value_range=(0, 1), seed=seed + 4, name="random_contrast"
            )
        )
    return out


def make_preprocess(
    cfg: ImagesDataConfig, mean: Sequence[float], std: Sequence[float], seed: int = 0
) -> Callable:
    """`x -> normalise(augment(x / 255))` for `tfmodels.vision.build_classifier`."""

    # Layers are made per call so that every model gets its own.
    def preprocess(x):
        x = keras.layers.Rescaling(1.0 / 255, name="rescale")(x)
        for layer in augmentation_layers(cfg, seed):
            x = layer(x)
        if cfg.normalize:
            variance = [float(s) ** 2 for s in std]
            x = keras.layers.Normalization(mean=list(mean), variance=variance, name="normalize")(x)
        return x

    return preprocess
