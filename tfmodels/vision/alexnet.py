"""AlexNet (Krizhevsky et al., 2012), the single-tower version.

At 227x227x3 with 1000 classes it has the familiar 62.4M parameters: five convolutions
(11x11 stride 4, 5x5, then three 3x3) with overlapping max pooling, two 4096-wide dense
layers with dropout. Small images (under 64 pixels, e.g. CIFAR) cannot take the 11x11
stride-4 stem, so they get the same five-convolution shape with one tower's widths
(48-128-192-192-128), 5x5/3x3 stride-1 filters and 1024-wide dense layers.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers


def alexnet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    preprocess: Callable | None = None,
    width: float = 1.0,
    dropout: float = 0.5,
) -> keras.Model:
    inputs = keras.Input(shape=input_shape, name="image")
    x = preprocess(inputs) if preprocess else inputs
    small = min(input_shape[:2]) < 64

    def conv(filters: int, kernel: int, strides: int = 1, padding: str = "same", name=""):
        return layers.Conv2D(
            max(1, int(filters * width)),
            kernel,
            strides=strides,
            padding=padding,
            activation="relu",
            name=name,
        )

    if small:
        widths, dense = (48, 128, 192, 192, 128), 1024
        x = conv(widths[0], 5, name="conv1")(x)
    else:
        widths, dense = (96, 256, 384, 384, 256), 4096
        x = conv(widths[0], 11, strides=4, padding="valid", name="conv1")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same" if small else "valid", name="pool1")(x)
    x = conv(widths[1], 5, name="conv2")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same" if small else "valid", name="pool2")(x)
    x = conv(widths[2], 3, name="conv3")(x)
    x = conv(widths[3], 3, name="conv4")(x)
    x = conv(widths[4], 3, name="conv5")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same" if small else "valid", name="pool5")(x)

    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(int(dense * width), activation="relu", name="fc6")(x)
    x = layers.Dropout(dropout, name="drop6")(x)
    x = layers.Dense(int(dense * width), activation="relu", name="fc7")(x)
    x = layers.Dropout(dropout, name="drop7")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="alexnet")
