"""VGG (Simonyan & Zisserman, 2014): stacks of 3x3 convolutions between 2x2 max pools.

VGG-11 is configuration A and VGG-16 configuration D of the paper; VGG-16 at 224x224x3
with 1000 classes has 138,357,544 parameters (no batch norm, two 4096-wide dense layers).
For small images (under 64 pixels) the usual CIFAR variant is built instead: batch norm
after every convolution and a global-average-pooled single dense classifier, since the
feature map is 1x1 after five pools. `width` scales every convolution (0.5 = half the
filters, a quarter of the compute), which is how VGG fits a CPU time budget.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from tfmodels.layers import FusedBatchNormalization

# Filters per 3x3 convolution; "M" is a 2x2 max pool.
CONFIGS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ],
}


def vgg(
    input_shape: tuple[int, int, int],
    num_classes: int,
    depth: int = 16,
    preprocess: Callable | None = None,
    batch_norm: bool | None = None,
    width: float = 1.0,
    dropout: float = 0.5,
) -> keras.Model:
    if depth not in CONFIGS:
        raise ValueError(f"VGG depth must be one of {sorted(CONFIGS)}, got {depth}")
    small = min(input_shape[:2]) < 64
    batch_norm = small if batch_norm is None else batch_norm

    inputs = keras.Input(shape=input_shape, name="image")
    x = preprocess(inputs) if preprocess else inputs
    block, conv_index = 1, 1
    for item in CONFIGS[depth]:
        if item == "M":
            # `same` padding keeps odd sizes (28 -> 14 -> 7 -> 4 -> 2 -> 1) from vanishing.
            x = layers.MaxPooling2D(2, padding="same", name=f"block{block}_pool")(x)
            block, conv_index = block + 1, 1
            continue
        name = f"block{block}_conv{conv_index}"
        x = layers.Conv2D(
            max(1, int(item * width)), 3, padding="same", use_bias=not batch_norm, name=name
        )(x)
        if batch_norm:
            x = FusedBatchNormalization(name=f"{name}_bn")(x)
        x = layers.ReLU(name=f"{name}_relu")(x)
        conv_index += 1

    if small:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dropout(dropout, name="dropout")(x)
    else:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(int(4096 * width), activation="relu", name="fc1")(x)
        x = layers.Dropout(dropout, name="drop1")(x)
        x = layers.Dense(int(4096 * width), activation="relu", name="fc2")(x)
        x = layers.Dropout(dropout, name="drop2")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"vgg{depth}")
