"""LeNet-5 (LeCun et al., 1998): two convolution/pooling stages and three dense layers.

The classic network has 61,706 parameters at 32x32x1 with 10 classes. It uses ReLU and max
pooling here (the modern reading; `activation="tanh", pooling="average"` gives the 1998
flavour). Inputs smaller than 32x32, such as 28x28 MNIST digits, get `same` padding in the
first convolution, which is what padding MNIST to 32x32 did in the paper.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers


def lenet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    preprocess: Callable | None = None,
    activation: str = "relu",
    pooling: str = "max",
) -> keras.Model:
    inputs = keras.Input(shape=input_shape, name="image")
    x = preprocess(inputs) if preprocess else inputs
    pool = layers.MaxPooling2D if pooling == "max" else layers.AveragePooling2D

    # C1/S2: 6 feature maps of 5x5 filters.
    first_padding = "same" if min(input_shape[:2]) < 32 else "valid"
    x = layers.Conv2D(6, 5, padding=first_padding, activation=activation, name="c1")(x)
    x = pool(2, name="s2")(x)
    # C3/S4: 16 feature maps.
    x = layers.Conv2D(16, 5, activation=activation, name="c3")(x)
    x = pool(2, name="s4")(x)
    # C5, F6 and the output layer, as dense layers over the flattened maps.
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(120, activation=activation, name="c5")(x)
    x = layers.Dense(84, activation=activation, name="f6")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="lenet5")
