"""Autoencoders: dense, convolutional, denoising, sparse, stacked (layer-wise pretrained) and
variational, on images with pixels in [0, 1]. Each computes its own loss, and offers
`encode`, `decode`, `reconstruct` and `score` (the per-image anomaly score) for serving."""

from tfmodels.autoencoders.autoencoder import Autoencoder
from tfmodels.autoencoders.blocks import Corruption, Pair, build_pairs, unit_pixels
from tfmodels.autoencoders.build import MODEL_NAMES, AutoencoderSpec, build_autoencoder
from tfmodels.autoencoders.config import AutoencoderModelConfig
from tfmodels.autoencoders.stacked import LayerwisePretraining, StackedAutoencoder
from tfmodels.autoencoders.vae import VariationalAutoencoder

__all__ = [
    "MODEL_NAMES",
    "Autoencoder",
    "AutoencoderModelConfig",
    "AutoencoderSpec",
    "Corruption",
    "LayerwisePretraining",
    "Pair",
    "StackedAutoencoder",
    "VariationalAutoencoder",
    "build_autoencoder",
    "build_pairs",
    "unit_pixels",
]
