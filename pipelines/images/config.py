"""Config of the image-classification pipeline (`tfpipe run images`)."""

from __future__ import annotations

import dataclasses

from pipelines.core.config import PipelineConfig, ScheduleConfig, TrainConfig
from pipelines.image_input.config import ImageReadConfig
from tfmodels.vision import ModelName


@dataclasses.dataclass
class ImagesDataConfig(ImageReadConfig):
    """The image reading, and the classifier's normalisation and augmentation."""

    normalize: bool = True  # per-channel mean/std from the training images, in the model
    # Augmentation: Keras layers in the model, active in training only.
    crop_padding: int = 4  # random crop of the image padded by this many pixels; 0 = off
    flip: bool = True  # random horizontal flip (turn off for digits and text)
    rotation: float = 0.0  # fraction of a full turn, e.g. 0.05
    zoom: float = 0.0  # fraction, e.g. 0.1
    contrast: float = 0.0  # factor, e.g. 0.2
    explain_images: int = 8  # test images in the Grad-CAM++ / SmoothGrad grid
    misclassified_images: int = 16


@dataclasses.dataclass
class ImagesModelConfig:
    """Which classifier (`tfmodels.vision.ModelName`) and its size."""

    name: ModelName = "resnet20"  # lenet | alexnet | vgg11 | vgg16 | inception | resnet20 | ...
    width: float = 1.0  # filters multiplier (alexnet, vgg, inception, resnet)
    dropout: float = -1.0  # < 0: the family's default
    # Label smoothing of the training loss (0 = plain cross-entropy), e.g. 0.1.
    label_smoothing: float = 0.0
    # Batch norm on TensorFlow's fused kernel (`tfmodels.layers.FusedBatchNormalization`,
    # the Keras layer's weights and maths) or Keras' own layer: see the A/B in README.md.
    fused_batch_norm: bool = True


@dataclasses.dataclass
class ImagesServingConfig:
    """Serving options: they may change when a trained run is exported again."""

    top_k: int = 5  # labels returned by the serving signature (at most the class count)
    # Test-time augmentation: the export averages the probabilities of each image and its
    # mirror image (twice the compute per image). Only where mirroring keeps the label.
    tta_flip: bool = False


def _images_train() -> TrainConfig:
    return TrainConfig(
        epochs=15,
        batch_size=32,
        learning_rate=2e-3,
        optimizer="adam",
        schedule=ScheduleConfig(
            name="exponential", decay_rate=0.5, decay_steps=100, staircase=False, warmup_steps=0
        ),
        mixed_precision="auto",
        monitor="val_accuracy",
    )


@dataclasses.dataclass
class ImagesConfig(PipelineConfig):
    data: ImagesDataConfig = dataclasses.field(default_factory=ImagesDataConfig)
    model: ImagesModelConfig = dataclasses.field(default_factory=ImagesModelConfig)
    serving: ImagesServingConfig = dataclasses.field(default_factory=ImagesServingConfig)
    train: TrainConfig = dataclasses.field(default_factory=_images_train)
