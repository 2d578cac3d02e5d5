"""Config of the autoencoder pipeline (`tfpipe run autoencoder`). Its `model` section is
the model's own config (`tfmodels.autoencoders.AutoencoderModelConfig`)."""

from __future__ import annotations

import dataclasses

from pipelines.core.config import PipelineConfig, ScheduleConfig, TrainConfig
from pipelines.image_input.config import ImageReadConfig
from tfmodels.autoencoders.config import AutoencoderModelConfig


@dataclasses.dataclass
class AutoencoderDataConfig(ImageReadConfig):
    """The images (read as the image pipeline reads them) and which of them are normal."""

    # Class names trained on (the one-class anomaly setting: the other classes of the test
    # split are the anomalies scored by AUROC); [] = every class.
    normal_classes: list[str] = dataclasses.field(default_factory=list)
    plot_images: int = 8  # test images in the reconstruction grid
    # Training images moved by up to this many pixels (zeros fill in), drawn per image each
    # epoch: more varied data for a model that overfits a small set (the VAE); 0 = off.
    shift: int = 0


@dataclasses.dataclass
class AutoencoderServingConfig:
    """Serving options: they may change when a trained run is exported again."""

    # The anomaly threshold: this percentile of the normal validation images' scores
    # (kept with the model), unless `threshold` gives it outright.
    threshold_percentile: float = 95.0
    threshold: float | None = None
    # vae: draws of z per image in the negative ELBO estimate (fixed noise: deterministic)
    elbo_samples: int = 8


def _autoencoder_train() -> TrainConfig:
    return TrainConfig(
        epochs=60,
        batch_size=16,
        learning_rate=2e-3,
        optimizer="adam",
        schedule=ScheduleConfig(name="constant"),
    )


@dataclasses.dataclass
class AutoencoderConfig(PipelineConfig):
    data: AutoencoderDataConfig = dataclasses.field(default_factory=AutoencoderDataConfig)
    model: AutoencoderModelConfig = dataclasses.field(default_factory=AutoencoderModelConfig)
    serving: AutoencoderServingConfig = dataclasses.field(default_factory=AutoencoderServingConfig)
    train: TrainConfig = dataclasses.field(default_factory=_autoencoder_train)
