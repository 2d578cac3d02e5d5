"""Inception: parallel branches of different receptive fields, concatenated.

* Large images (96 pixels and up): GoogLeNet / Inception v1 (Szegedy et al., 2014), nine
  four-branch modules (1x1; 1x1 then 3x3; 1x1 then 5x5; 3x3 max pool then 1x1), without
  the auxiliary classifiers, with batch norm after each convolution.
* Small images: the small Inception of Zhang et al. (2017, "Understanding deep learning
  requires rethinking generalization") for CIFAR: modules of a 1x1 and a 3x3 branch, and
  downsample modules of a strided 3x3 convolution beside a max pool.

`width` scales every branch.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from tfmodels.layers import FusedBatchNormalization


def conv_bn(x, filters: int, kernel: int, strides: int = 1, name: str = ""):
    x = layers.Conv2D(
        filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = FusedBatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def googlenet_module(x, b1: int, b3r: int, b3: int, b5r: int, b5: int, pool: int, name: str):
    """Four branches: 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | max pool -> 1x1."""
    branch1 = conv_bn(x, b1, 1, name=f"{name}_1x1")
    branch3 = conv_bn(conv_bn(x, b3r, 1, name=f"{name}_3x3r"), b3, 3, name=f"{name}_3x3")
    branch5 = conv_bn(conv_bn(x, b5r, 1, name=f"{name}_5x5r"), b5, 5, name=f"{name}_5x5")
    pooled = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch_pool = conv_bn(pooled, pool, 1, name=f"{name}_poolproj")
    return layers.Concatenate(name=f"{name}_concat")([branch1, branch3, branch5, branch_pool])


def small_module(x, c1: int, c3: int, name: str):
    """Two branches: 1x1 | 3x3."""
    branch1 = conv_bn(x, c1, 1, name=f"{name}_1x1")
    branch3 = conv_bn(x, c3, 3, name=f"{name}_3x3")
    return layers.Concatenate(name=f"{name}_concat")([branch1, branch3])


def downsample_module(x, c3: int, name: str):
    """Halve the resolution: strided 3x3 convolution beside a 3x3 max pool."""
    branch3 = conv_bn(x, c3, 3, strides=2, name=f"{name}_3x3")
    pooled = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    return layers.Concatenate(name=f"{name}_concat")([branch3, pooled])


# GoogLeNet modules: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool projection); "M" = max pool.
GOOGLENET = [
    ("3a", (64, 96, 128, 16, 32, 32)),
    ("3b", (128, 128, 192, 32, 96, 64)),
    "M",
    ("4a", (192, 96, 208, 16, 48, 64)),
    ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)),
    ("4d", (112, 144, 288, 32, 64, 64)),
    ("4e", (256, 160, 320, 32, 128, 128)),
    "M",
    ("5a", (256, 160, 320, 32, 128, 128)),
    ("5b", (384, 192, 384, 48, 128, 128)),
]
# Small Inception: ("i", 1x1, 3x3) modules and ("d", 3x3) downsample modules.
SMALL = [
    ("i", 32, 32),
    ("i", 32, 48),
    ("d", 80),
    ("i", 112, 48),
    ("i", 96, 64),
    ("i", 80, 80),
    ("i", 48, 96),
    ("d", 96),
    ("i", 176, 160),
    ("i", 176, 160),
]


def inception(
    input_shape: tuple[int, int, int],
    num_classes: int,
    preprocess: Callable | None = None,
    width: float = 1.0,
    dropout: float = 0.4,
) -> keras.Model:
    inputs = keras.Input(shape=input_shape, name="image")
    x = preprocess(inputs) if preprocess else inputs

    def w(filters: int) -> int:
        return max(1, int(filters * width))

    if min(input_shape[:2]) >= 96:
        x = conv_bn(x, w(64), 7, strides=2, name="stem1")
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem1_pool")(x)
        x = conv_bn(x, w(64), 1, name="stem2")
        x = conv_bn(x, w(192), 3, name="stem3")
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem3_pool")(x)
        pools = 0
        for item in GOOGLENET:
            if item == "M":
                pools += 1
                x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{pools}")(x)
            else:
                name, filters = item
                x = googlenet_module(x, *(w(f) for f in filters), name=f"inception{name}")
        name = "googlenet"
    else:
        x = conv_bn(x, w(96), 3, name="stem")
        for index, (kind, *filters) in enumerate(SMALL, start=1):
            if kind == "i":
                x = small_module(x, w(filters[0]), w(filters[1]), name=f"inception{index}")
            else:
                x = downsample_module(x, w(filters[0]), name=f"downsample{index}")
        name = "inception_small"

    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)
