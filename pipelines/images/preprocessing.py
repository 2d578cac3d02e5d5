"""Preprocessing as Keras layers inside the model: the export takes raw 0-255 pixels.

Order: rescale to [0, 1], augment (training only: Keras' random layers are identities at
inference), then normalise per channel with the training set's mean and std.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras

from pipelines.image_input.augment import RandomPadCrop
from pipelines.images.config import ImagesDataConfig


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
