"""The six autoencoders by name, from one spec."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from tfmodels.autoencoders.autoencoder import (
    ANOMALY_SCORES,
    RECONSTRUCTION_LOSSES,
    SPARSITY,
    Autoencoder,
)
from tfmodels.autoencoders.blocks import BASES, Corruption, build_pairs, chain
from tfmodels.autoencoders.config import AutoencoderModelConfig
from tfmodels.autoencoders.stacked import StackedAutoencoder
from tfmodels.autoencoders.vae import LIKELIHOODS, VariationalAutoencoder

MODEL_NAMES = ("dense", "conv", "denoising", "sparse", "stacked", "vae")


@dataclasses.dataclass
class AutoencoderSpec:
    """What `build_autoencoder` builds. `base` (dense | conv) is the layer kind of the
    denoising, sparse, stacked and VAE models; `dense` and `conv` name theirs."""

    name: str
    input_shape: tuple[int, int, int]
    base: str = "conv"
    code_size: int = 16
    hidden: tuple[int, ...] = (128,)  # dense layers between the pixels and the code
    filters: tuple[int, ...] = (32, 64)  # stride-2 conv layers between pixels and code
    depth: int = 0  # conv: stride-1 conv layers after each stride-2 one (and in the decoder)
    reconstruction_loss: str = "mse"  # mse | bce (all but the VAE)
    anomaly_score: str = "relative_error"  # relative_error | error (all but the VAE)
    detail_power: float = 1.0  # relative_error: error / detail ** detail_power
    binarize: float = 0.0  # > 0: pixels at or above this are 1, the rest 0
    noise: str = "gaussian"  # denoising: gaussian | masking
    noise_stddev: float = 0.5
    mask_rate: float = 0.3
    sparsity: str = "l1"  # sparse: l1 | kl
    sparsity_weight: float = 1e-3
    sparsity_target: float = 0.05
    epochs_per_pair: int = 2  # stacked: pretraining epochs of each pair
    likelihood: str = "bernoulli"  # vae decoder: bernoulli | gaussian
    kl_warmup_steps: int = 0
    seed: int = 0

    @classmethod
    def from_config(
        cls, config: AutoencoderModelConfig, input_shape: tuple[int, int, int], seed: int = 0
    ) -> AutoencoderSpec:
        """The spec of `config` for images of `input_shape` (the data's)."""
        shared = {
            f.name: getattr(config, f.name)
            for f in dataclasses.fields(config)
            if f.name in _SPEC_FIELDS and f.name not in ("hidden", "filters", "binarize")
        }
        return cls(
            **shared,
            input_shape=tuple(input_shape),
            hidden=tuple(config.hidden),
            filters=tuple(config.filters),
            binarize=config.binarize_threshold(),
            likelihood=config.decoder,
            seed=seed,
        )

    def __post_init__(self):
        for key, value, known in (
            ("name", self.name, MODEL_NAMES),
            ("base", self.base, BASES),
            ("noise", self.noise, Corruption.KINDS),
            ("sparsity", self.sparsity, SPARSITY),
            ("decoder", self.likelihood, LIKELIHOODS),
            ("reconstruction_loss", self.reconstruction_loss, RECONSTRUCTION_LOSSES),
            ("anomaly_score", self.anomaly_score, ANOMALY_SCORES),
        ):
            if value not in known:
                raise ValueError(f"model.{key}: unknown '{value}' ({', '.join(known)})")
        if not 0 <= self.detail_power <= 2:
            raise ValueError(f"model.detail_power must be between 0 and 2, got {self.detail_power}")
        if self.depth < 0:
            raise ValueError(f"model.depth must be 0 or more, got {self.depth}")
        if self.code_size < 0 or (self.code_size == 0 and not self.convolutional_code_ok):
            raise ValueError(
                f"model.code_size must be at least 1, got {self.code_size} (0, a "
                "convolutional code, is for the conv and denoising models on conv layers "
                "with model.filters)"
            )
        if self.epochs_per_pair < 1:
            raise ValueError(
                f"model.epochs_per_pair must be at least 1, got {self.epochs_per_pair}"
            )

    @property
    def convolutional_code_ok(self) -> bool:
        """Whether `code_size` 0 (the last feature map as the code) can be built."""
        return self.name in ("conv", "denoising") and self.layers == "conv" and bool(self.filters)

    @property
    def pairs(self) -> int:
        """Encoder-decoder pairs: one per hidden (dense) or conv layer, and the code's."""
        layers = len(self.hidden if self.layers == "dense" else self.filters)
        return layers + (self.code_size > 0)

    @property
    def layers(self) -> str:
        return self.name if self.name in BASES else self.base


_SPEC_FIELDS = frozenset(f.name for f in dataclasses.fields(AutoencoderSpec))


def build_autoencoder(spec: AutoencoderSpec) -> keras.Model:
    """The model `spec.name` names, built (its weights exist) and ready to compile."""
    common = {"binarize": spec.binarize}
    if spec.name == "vae":
        model = _vae(spec)
    else:
        code_activation = "linear"
        if spec.name == "sparse":
            code_activation = "sigmoid" if spec.sparsity == "kl" else "relu"
        pairs = build_pairs(
            spec.layers,
            spec.input_shape,
            spec.code_size,
            spec.hidden,
            spec.filters,
            code_activation=code_activation,
            depth=spec.depth,
        )
        common.update(
            reconstruction_loss=spec.reconstruction_loss,
            anomaly_score=spec.anomaly_score,
            detail_power=spec.detail_power,
        )
        if spec.name == "stacked":
            model = StackedAutoencoder(
                pairs, epochs_per_pair=spec.epochs_per_pair, name="stacked_autoencoder", **common
            )
        else:
            extra = {}
            if spec.name == "denoising":
                extra["corruption"] = Corruption(
                    spec.noise, spec.noise_stddev, spec.mask_rate, seed=spec.seed, name="corruption"
                )
            if spec.name == "sparse":
                extra.update(
                    sparsity=spec.sparsity,
                    sparsity_weight=spec.sparsity_weight,
                    sparsity_target=spec.sparsity_target,
                )
            model = Autoencoder(
                chain([p.encoder for p in pairs], "encoder"),
                chain([p.decoder for p in reversed(pairs)], "decoder"),
                name=f"{spec.name}_autoencoder",
                **common,
                **extra,
            )
    model(np.zeros((1, *spec.input_shape), np.float32))  # creates every weight
    return model


def _vae(spec: AutoencoderSpec) -> VariationalAutoencoder:
    """The pairs' layers with the code layer split into the posterior's mean and log
    variance; the decoder outputs logits (Bernoulli) or means in [0, 1] (Gaussian)."""
    output = "linear" if spec.likelihood == "bernoulli" else "sigmoid"
    pairs = build_pairs(
        spec.layers,
        spec.input_shape,
        spec.code_size,
        spec.hidden,
        spec.filters,
        output_activation=output,
        depth=spec.depth,
    )
    inputs = keras.Input(spec.input_shape, name="pixels")
    x = inputs
    for pair in pairs[:-1]:
        x = pair.encoder(x)
    x = keras.layers.Flatten(name="posterior_flatten")(x)
    z_mean = keras.layers.Dense(spec.code_size, name="z_mean")(x)
    z_log_var = keras.layers.Dense(spec.code_size, name="z_log_var")(x)
    encoder = keras.Model(inputs, [z_mean, z_log_var], name="encoder")
    decoder = chain([p.decoder for p in reversed(pairs)], "decoder")
    return VariationalAutoencoder(
        encoder,
        decoder,
        likelihood=spec.likelihood,
        binarize=spec.binarize,
        kl_warmup_steps=spec.kl_warmup_steps,
        seed=spec.seed,
        name="vae",
    )
