"""The autoencoder's config (`model.*` of the autoencoder pipeline): which of the six models
and its size, as a config file writes it. `AutoencoderSpec.from_config` adds what the data
decides (the image shape)."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass
class AutoencoderModelConfig:
    """Which autoencoder (`tfmodels.autoencoders`) and its size."""

    name: Literal["dense", "conv", "denoising", "sparse", "stacked", "vae"] = "conv"
    base: Literal["dense", "conv"] = "conv"  # the layers of denoising, sparse, stacked, vae
    code_size: int = 16  # 0: conv and denoising keep the last feature map as the code
    hidden: list[int] = dataclasses.field(default_factory=lambda: [128])  # dense layers
    filters: list[int] = dataclasses.field(default_factory=lambda: [32, 64])  # conv, stride 2
    depth: int = 0  # conv: 3x3 stride-1 layers after each stride-2 one (and in the decoder)
    reconstruction_loss: Literal["mse", "bce"] = "mse"  # bce: pixel cross-entropy; not the VAE's
    # The anomaly score (not the VAE's: its score is the negative ELBO): relative_error,
    # the squared error over the image's own detail (squared neighbouring-pixel differences),
    # so simple images are not normal merely for being easy to rebuild | error, the
    # squared error alone.
    anomaly_score: Literal["relative_error", "error"] = "relative_error"
    # relative_error: error / detail ** detail_power. 1 trusts the detail fully; colour
    # photographs score better a little below (CIFAR-10's recipe: chosen on its validation
    # images, see the README).
    detail_power: float = 1.0
    # Pixels at or above this (0-1 scale) become 1, the rest 0, in training and serving;
    # 0 = off; < 0: 0.5 for the VAE with the Bernoulli decoder, off otherwise.
    binarize: float = -1.0
    # denoising: the corruption, in training only
    # gaussian (stddev, clipped to [0, 1]) | masking (rate of pixels)
    noise: Literal["gaussian", "masking"] = "gaussian"
    noise_stddev: float = 0.5
    mask_rate: float = 0.3
    # sparse: a penalty on the code
    # l1 (activations, relu code) | kl (to a target rate, sigmoid code)
    sparsity: Literal["l1", "kl"] = "l1"
    sparsity_weight: float = 0.001
    sparsity_target: float = 0.05
    # stacked: pretraining epochs of each encoder-decoder pair before fine-tuning the whole
    epochs_per_pair: int = 2
    # vae
    decoder: Literal["bernoulli", "gaussian"] = "bernoulli"  # gaussian: one learned sigma
    kl_warmup_steps: int = 0  # the KL weight rises linearly to 1 over this many steps

    def binarize_threshold(self) -> float:
        """`binarize` with its automatic value (< 0) resolved."""
        if self.binarize >= 0:
            return self.binarize
        return 0.5 if self.name == "vae" and self.decoder == "bernoulli" else 0.0
