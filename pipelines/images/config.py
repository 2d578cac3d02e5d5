"""Config of the image-classification pipeline (`tfpipe run images`)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from pipelines.core.config import DataConfig, PipelineConfig, ScheduleConfig, TrainConfig
from tfmodels.vision import ModelName


@dataclasses.dataclass
class ImageReadConfig(DataConfig):
    """Where images are and how they are read and cached: what every pipeline that reads
    the image folders shares (`pipelines.images.dataset`)."""

    # Folder (relative to the data dir) of images (`train/`, `test/`, optional `val/`, one
    # subfolder per class; or class subfolders only) or of TFRecord shards with meta.json;
    # or an archive (.tar.gz, .tgz, .tar, .zip) of one, extracted once into `extract_dir`.
    path: str = "images"
    # Archive extraction cache; "" = $TFPIPE_CACHE_DIR/extracted, else
    # ~/.cache/tfpipelines/extracted. A folder per archive name, size and mtime.
    extract_dir: str = ""
    # Labels from file names instead of class folders: a regex whose one group is the class,
    # searched in each file name (folders read recursively), e.g. 'num(\d)'. "" = folders.
    label_pattern: str = ""
    # How val/test are carved from train: random (seeded, per class) | ordered (the last
    # test_fraction of the files by path is test, the val_fraction before that validation).
    carve: Literal["random", "ordered"] = "random"
    image_size: list[int] = dataclasses.field(default_factory=list)  # [h, w]; [] = most common
    channels: int = 0  # 1 grey, 3 colour, 0 = 1 if every training image is grey, else 3
    val_fraction: float = 0.1  # carved from train (per class) when there is no val/ folder
    test_fraction: float = 0.2  # carved from train when there is no test/ folder
    # Corrupt or unreadable files (or names without a label), reported by path.
    on_bad_image: Literal["fail", "skip"] = "fail"
    validate: bool = True  # decode every image once before training (folders only)
    cache: str = "auto"  # auto (memory if it fits in cache_max_mb) | memory | none | a path
    cache_max_mb: int = 4096
    shuffle_buffer: int = 0  # 0 = the whole training set (when cached), else 10,000
    max_train_images: int = 0  # 0 = all; for quick experiments


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
