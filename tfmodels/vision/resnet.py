"""ResNet (He et al., 2015): residual blocks with batch norm, in two families.

* Small images (CIFAR, section 4.2 of the paper): depth 6n+2 (14, 20, 32, 44, 56, 110), three
  stages of n basic blocks with 16, 32 and 64 filters, a 3x3 stem, global pooling.
  ResNet-20 has about 0.27M parameters.
* Large images (ImageNet): ResNet-18/34 of basic blocks, ResNet-50/101/152 of bottleneck
  blocks (stride on the 3x3 convolution, "v1.5"), a 7x7 stride-2 stem and max pool.
  ResNet-50 at 224x224x3 with 1000 classes has 25,557,032 trainable parameters (plus
  53,120 batch-norm moving statistics, which Keras counts as non-trainable).

Convolutions feeding batch norm have no bias; a projection (1x1 convolution and batch
norm) joins a block whose shape changes. `width` scales every stage's filters.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers

from tfmodels.layers import FusedBatchNormalization

LARGE_BLOCKS: dict[int, tuple[str, list[int]]] = {
    18: ("basic", [2, 2, 2, 2]),
    34: ("basic", [3, 4, 6, 3]),
    50: ("bottleneck", [3, 4, 6, 3]),
    101: ("bottleneck", [3, 4, 23, 3]),
    152: ("bottleneck", [3, 8, 36, 3]),
}
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def conv_bn(x, filters: int, kernel: int, strides: int = 1, relu: bool = True, name: str = ""):
    """Convolution, batch norm and (optionally) ReLU: the unit every block is made of."""
    x = layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    x = FusedBatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x) if relu else x


def shortcut(x, filters: int, strides: int, name: str):
    """Identity when the shape is unchanged, else a 1x1 projection with batch norm."""
    if strides == 1 and x.shape[-1] == filters:
        return x
    return conv_bn(x, filters, 1, strides=strides, relu=False, name=f"{name}_proj")


def basic_block(x, filters: int, strides: int, name: str):
    """Two 3x3 convolutions (ResNet-18/34 and the CIFAR ResNets)."""
    residual = shortcut(x, filters, strides, name)
    x = conv_bn(x, filters, 3, strides=strides, name=f"{name}_1")
    x = conv_bn(x, filters, 3, relu=False, name=f"{name}_2")
    x = layers.Add(name=f"{name}_add")([x, residual])
    return layers.ReLU(name=f"{name}_out")(x)


def bottleneck_block(x, filters: int, strides: int, name: str):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4 (ResNet-50 and deeper)."""
    residual = shortcut(x, filters * 4, strides, name)
    x = conv_bn(x, filters, 1, name=f"{name}_1")
    x = conv_bn(x, filters, 3, strides=strides, name=f"{name}_2")
    x = conv_bn(x, filters * 4, 1, relu=False, name=f"{name}_3")
    x = layers.Add(name=f"{name}_add")([x, residual])
    return layers.ReLU(name=f"{name}_out")(x)


def resnet(
    input_shape: tuple[int, int, int],
    num_classes: int,
    depth: int = 20,
    preprocess: Callable | None = None,
    width: float = 1.0,
) -> keras.Model:
    inputs = keras.Input(shape=input_shape, name="image")
    x = preprocess(inputs) if preprocess else inputs

    if depth in LARGE_BLOCKS:
        kind, counts = LARGE_BLOCKS[depth]
        block = basic_block if kind == "basic" else bottleneck_block
        stage_filters = [64, 128, 256, 512]
        x = conv_bn(x, int(64 * width), 7, strides=2, name="stem")
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    elif (depth - 2) % 6 == 0 and depth >= 8:
        block, counts = basic_block, [(depth - 2) // 6] * 3
        stage_filters = [16, 32, 64]
        x = conv_bn(x, int(16 * width), 3, name="stem")
    else:
        raise ValueError(
            f"ResNet depth must be 6n+2 (20, 32, 44, 56, 110) for the small-image family or "
            f"one of {sorted(LARGE_BLOCKS)}, got {depth}"
        )

    for stage, (filters, count) in enumerate(zip(stage_filters, counts, strict=True), start=1):
        for index in range(count):
            strides = 2 if stage > 1 and index == 0 else 1
            x = block(x, int(filters * width), strides, name=f"stage{stage}_block{index + 1}")

    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"resnet{depth}")
