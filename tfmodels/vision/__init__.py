"""Image classifiers, one readable file per family, behind one factory.

Every model takes raw pixel tensors of `input_shape` (after the optional `preprocess`
callable, which is where the pipelines put rescaling, normalisation and augmentation
layers) and ends in float32 softmax probabilities over `num_classes`, so the same model
trains under mixed precision and exports unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal, get_args

import keras

from tfmodels.vision.alexnet import alexnet
from tfmodels.vision.inception import inception
from tfmodels.vision.lenet import lenet
from tfmodels.vision.resnet import resnet
from tfmodels.vision.vgg import vgg

__all__ = [
    "ModelName",
    "alexnet",
    "build_classifier",
    "inception",
    "lenet",
    "model_names",
    "resnet",
    "vgg",
]


# The names `build_classifier` accepts (a family name alone picks a default depth).
ModelName = Literal[
    "lenet",
    "alexnet",
    "vgg",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "inception",
    "resnet",
    "resnet14",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
]


def model_names() -> list[str]:
    """The names `build_classifier` accepts (`ModelName`)."""
    return list(get_args(ModelName))


def build_classifier(
    name: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    preprocess: Callable | None = None,
    width: float = 1.0,
    dropout: float | None = None,
) -> keras.Model:
    """Build `name` (e.g. "lenet", "vgg16", "resnet20", "resnet50", "inception").

    A bare family name picks the depth that suits the image size: VGG-16; ResNet-20 under
    64 pixels, ResNet-50 above.
    """
    input_shape = tuple(int(d) for d in input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape}")
    small = min(input_shape[:2]) < 64
    extra = {} if dropout is None else {"dropout": dropout}
    match = re.fullmatch(r"(lenet|alexnet|vgg|inception|resnet)(\d*)", name.lower())
    if not match:
        raise ValueError(f"unknown model '{name}' (known: {', '.join(model_names())})")
    family, depth = match.group(1), match.group(2)
    if family == "lenet" and not depth:
        return lenet(input_shape, num_classes, preprocess=preprocess)
    if family == "alexnet" and not depth:
        return alexnet(input_shape, num_classes, preprocess=preprocess, width=width, **extra)
    if family == "inception" and not depth:
        return inception(input_shape, num_classes, preprocess=preprocess, width=width, **extra)
    if family == "vgg":
        return vgg(
            input_shape,
            num_classes,
            depth=int(depth or 16),
            preprocess=preprocess,
            width=width,
            **extra,
        )
    if family == "resnet":
        default = 20 if small else 50
        return resnet(
            input_shape,
            num_classes,
            depth=int(depth or default),
            preprocess=preprocess,
            width=width,
        )
    raise ValueError(f"unknown model '{name}' (known: {', '.join(model_names())})")
