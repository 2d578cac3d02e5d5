"""Encoder-decoder pairs, the bricks every autoencoder here is built from.

Pair k maps the features `h[k]` to `h[k+1]` (its encoder block) and back (its decoder
block), so that pair 0's decoder rebuilds the image. Chaining the encoder blocks in order
and the decoder blocks in reverse gives the whole autoencoder; training one pair at a time
on the previous pair's features is the stacked autoencoders' greedy pretraining.

- dense: fully connected layers (`hidden` units, then the code);
- conv: 3x3 convolutions of stride 2 (`filters`), each followed by `depth` 3x3 convolutions
  of stride 1 at the reduced size, decoded by as many stride-1 convolutions and a
  transposed convolution that gives back exactly the input's size (odd sizes included),
  then a dense code.

Every block is a small functional model with explicitly named layers, so its weights have
the same names in every process (the kept model's weights are matched by name).
"""

from __future__ import annotations

import dataclasses
import math

import keras
import tensorflow as tf

BASES = ("dense", "conv")


@dataclasses.dataclass
class Pair:
    """One encoder block and the decoder block that inverts it."""

    encoder: keras.Model
    decoder: keras.Model


def dense_pair(
    index: int, in_shape: tuple[int, ...], units: int, activation: str, out_activation: str
) -> Pair:
    """Flatten -> Dense(units); back: Dense(prod(in_shape)) -> reshape to `in_shape`."""
    inputs = keras.Input(in_shape, name=f"enc{index}_in")
    x = keras.layers.Flatten(name=f"enc{index}_flatten")(inputs)
    code = keras.layers.Dense(units, activation=activation, name=f"enc{index}_dense")(x)
    encoder = keras.Model(inputs, code, name=f"encoder_{index}")
    back_in = keras.Input((units,), name=f"dec{index}_in")
    y = keras.layers.Dense(
        math.prod(in_shape), activation=out_activation, name=f"dec{index}_dense"
    )(back_in)
    y = keras.layers.Reshape(in_shape, name=f"dec{index}_reshape")(y)
    return Pair(encoder, keras.Model(back_in, y, name=f"decoder_{index}"))


def conv_pair(
    index: int, in_shape: tuple[int, int, int], filters: int, out_activation: str, depth: int = 0
) -> Pair:
    """Conv 3x3 stride 2 ('same'), then `depth` 3x3 stride-1 convs; back: `depth` stride-1
    convs, then a transposed conv with the output padding that restores `in_shape`
    exactly (28 -> 14 -> 28, 7 -> 4 -> 7). The stride-1 layers work at the halved size,
    where they cost a quarter of what they would before it."""
    height, width, channels = in_shape
    inputs = keras.Input(in_shape, name=f"enc{index}_in")
    features = keras.layers.Conv2D(
        filters, 3, strides=2, padding="same", activation="relu", name=f"enc{index}_conv"
    )(inputs)
    for j in range(depth):
        features = keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", name=f"enc{index}_conv{j + 1}"
        )(features)
    encoder = keras.Model(inputs, features, name=f"encoder_{index}")
    back_in = keras.Input(
        (math.ceil(height / 2), math.ceil(width / 2), filters), name=f"dec{index}_in"
    )
    y = back_in
    for j in range(depth):
        y = keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", name=f"dec{index}_conv{j + 1}"
        )(y)
    # Output length of a 3x3 stride-2 'same' transposed conv: 2n - 1 + output_padding.
    padding = (1 - height % 2, 1 - width % 2)
    y = keras.layers.Conv2DTranspose(
        channels,
        3,
        strides=2,
        padding="same",
        output_padding=padding,
        activation=out_activation,
        name=f"dec{index}_deconv",
    )(y)
    return Pair(encoder, keras.Model(back_in, y, name=f"decoder_{index}"))


def build_pairs(
    base: str,
    input_shape: tuple[int, int, int],
    code_size: int,
    hidden: tuple[int, ...] = (),
    filters: tuple[int, ...] = (),
    code_activation: str = "linear",
    output_activation: str = "sigmoid",
    depth: int = 0,
) -> list[Pair]:
    """The pairs from the image to the code: `base` dense uses `hidden`, conv `filters`
    (and `depth` stride-1 convs in each); a last pair makes a dense code of `code_size`
    units. Conv with `code_size` 0 has none: the code is the last feature map (a
    convolutional code, for a denoising model that need not squeeze the image)."""
    if base not in BASES:
        raise ValueError(f"model.base: unknown '{base}' ({', '.join(BASES)})")
    pairs: list[Pair] = []
    shape: tuple[int, ...] = tuple(int(d) for d in input_shape)

    def out_activation() -> str:  # the decoder block that rebuilds the image is pair 0's
        return output_activation if not pairs else "relu"

    if base == "conv":
        for f in filters:
            pair = conv_pair(len(pairs), shape, int(f), out_activation(), depth)
            pairs.append(pair)
            shape = tuple(pair.encoder.output.shape[1:])
    else:
        for units in hidden:
            pairs.append(dense_pair(len(pairs), shape, int(units), "relu", out_activation()))
            shape = (int(units),)
    if code_size == 0 and base == "conv" and pairs:
        return pairs
    pairs.append(dense_pair(len(pairs), shape, code_size, code_activation, out_activation()))
    return pairs


def chain(blocks: list[keras.Model], name: str) -> keras.Sequential:
    """`blocks` applied in order, as one model."""
    return keras.Sequential([keras.Input(blocks[0].input.shape[1:]), *blocks], name=name)


def unit_pixels(x: tf.Tensor, binarize: float = 0.0) -> tf.Tensor:
    """float32 pixels in [0, 1]; with `binarize` > 0, 1 where a pixel is at or above it."""
    x = tf.cast(x, tf.float32)
    if binarize > 0:
        x = tf.cast(x >= binarize, tf.float32)
    return x


@keras.saving.register_keras_serializable(package="tfmodels")
class Corruption(keras.layers.Layer):
    """The denoising autoencoder's corruption of its input, in training only.

    `gaussian`: add N(0, stddev^2) to every pixel and clip to [0, 1]; `masking`: set a
    random `rate` of the pixels (each channel on its own) to 0. At inference the input
    passes unchanged, so the model rebuilds what it is given.
    """

    KINDS = ("gaussian", "masking")

    def __init__(
        self,
        kind: str = "gaussian",
        stddev: float = 0.5,
        rate: float = 0.3,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kind not in self.KINDS:
            raise ValueError(f"model.noise: unknown '{kind}' ({', '.join(self.KINDS)})")
        self.kind, self.stddev, self.rate, self.seed = kind, float(stddev), float(rate), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training:
            return x
        shape = keras.ops.shape(x)
        if self.kind == "gaussian":
            noise = keras.random.normal(
                shape, stddev=self.stddev, seed=self.seed_generator, dtype=x.dtype
            )
            return keras.ops.clip(x + noise, 0.0, 1.0)
        keep = keras.random.uniform(shape, seed=self.seed_generator) >= self.rate
        return x * keras.ops.cast(keep, x.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "kind": self.kind,
            "stddev": self.stddev,
            "rate": self.rate,
            "seed": self.seed,
        }
