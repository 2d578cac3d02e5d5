"""Deterministic autoencoders: dense, convolutional, denoising and sparse.

One model class covers them: an encoder to a code, a decoder back to pixels in [0, 1], and
optionally a `Corruption` of the input in training (denoising: rebuild the clean image from
the corrupted one) and a sparsity penalty on the code (sparse: L1 on the activations, or KL
of each unit's mean activation to a target rate). The loss is computed by the model
(`compute_loss`), so it trains with `compile(optimizer)` and `fit` on batches of images
alone.

Besides `call` (used in training), the model offers what serving needs, all in inference
mode: `encode`, `decode`, `reconstruct` and `score` (per-image reconstruction error, the
anomaly score).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tfmodels.autoencoders import losses
from tfmodels.autoencoders.blocks import Corruption, unit_pixels

RECONSTRUCTION_LOSSES = ("mse", "bce")
SPARSITY = ("l1", "kl")
ANOMALY_SCORES = ("relative_error", "error")


class Autoencoder(keras.Model):
    """`decoder(encoder(corruption(x)))`, trained to rebuild the clean `x`.

    Inputs are float pixels in [0, 1] (`[B, H, W, C]`); with `binarize` > 0 they are set to
    0/1 first. `call` returns `reconstruction`, `code` and `input` (what the encoder saw,
    corrupted in training). Logged terms: `reconstruction_loss` and, for a sparse model,
    `sparsity_penalty` (before its weight).
    """

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        *,
        corruption: Corruption | None = None,
        reconstruction_loss: str = "mse",
        sparsity: str = "",
        sparsity_weight: float = 0.0,
        sparsity_target: float = 0.05,
        binarize: float = 0.0,
        anomaly_score: str = "relative_error",
        detail_power: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(
                f"model.reconstruction_loss: unknown '{reconstruction_loss}' "
                f"({', '.join(RECONSTRUCTION_LOSSES)})"
            )
        if anomaly_score not in ANOMALY_SCORES:
            raise ValueError(
                f"model.anomaly_score: unknown '{anomaly_score}' ({', '.join(ANOMALY_SCORES)})"
            )
        if sparsity and sparsity not in SPARSITY:
            raise ValueError(f"model.sparsity: unknown '{sparsity}' ({', '.join(SPARSITY)})")
        self.encoder = encoder
        self.decoder = decoder
        self.corruption = corruption
        self.reconstruction_loss = reconstruction_loss
        self.sparsity = sparsity
        self.sparsity_weight = float(sparsity_weight)
        self.sparsity_target = float(sparsity_target)
        self.binarize = float(binarize)
        self.anomaly_score = anomaly_score
        self.detail_power = float(detail_power)
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.sparsity_tracker = keras.metrics.Mean(name="sparsity_penalty") if sparsity else None

    @property
    def code_shape(self) -> tuple[int, ...]:
        """The code of one image as the decoder takes it: `(units,)`, or `(h, w, c)` for a
        convolutional code."""
        return tuple(int(d) for d in self.decoder.layers[0].input.shape[1:])

    @property
    def code_size(self) -> int:
        """Numbers in one image's code (the length of `encode`'s flat rows)."""
        return math.prod(self.code_shape)

    def prepare(self, x) -> tf.Tensor:
        """The pixels the model works on (binarised if asked)."""
        return unit_pixels(x, self.binarize)

    def call(self, x, training=False):
        clean = self.prepare(x)
        seen = self.corruption(clean, training=training) if self.corruption else clean
        code = self.encoder(seen, training=training)
        return {
            "reconstruction": self.decoder(code, training=training),
            "code": code,
            "input": seen,
        }

    # -- training ---------------------------------------------------------------------
    def reconstruction_error(self, target, reconstruction) -> tf.Tensor:
        """Per-image training reconstruction term (mean over pixels)."""
        if self.reconstruction_loss == "bce":
            return losses.binary_crossentropy(target, reconstruction)
        return losses.squared_error(target, reconstruction)

    def sparsity_penalty(self, code) -> tf.Tensor:
        """The batch's sparsity penalty on the code (before `sparsity_weight`)."""
        if self.sparsity == "kl":
            return losses.kl_sparsity(code, self.sparsity_target)
        return tf.reduce_mean(losses.l1_activity(code))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Reconstruction of the clean input, plus the weighted sparsity penalty."""
        error = self.reconstruction_error(self.prepare(x), y_pred["reconstruction"])
        self.reconstruction_tracker.update_state(error)
        loss = losses.replica_mean(error)
        if self.sparsity:
            penalty = self.sparsity_penalty(y_pred["code"])
            self.sparsity_tracker.update_state(penalty)
            loss = loss + losses.per_replica(self.sparsity_weight * penalty)
        return loss

    # -- serving (inference mode) -----------------------------------------------------
    def encode(self, x) -> tf.Tensor:
        """Codes `[B, code_size]` (a convolutional code flattened)."""
        return self._flat_code(self.prepare(x))

    def _flat_code(self, pixels) -> tf.Tensor:
        code = tf.cast(self.encoder(pixels, training=False), tf.float32)
        return tf.reshape(code, [-1, self.code_size])

    def decode(self, code) -> tf.Tensor:
        """Pixels in [0, 1] rebuilt from codes `[B, code_size]`."""
        code = tf.reshape(code, [-1, *self.code_shape])
        return tf.cast(self.decoder(code, training=False), tf.float32)

    def reconstruct(self, x) -> tf.Tensor:
        return self.decode(self.encode(x))

    def score(self, x) -> dict[str, tf.Tensor]:
        """`anomaly_score` (`relative_error`: the error over the image's own fine detail,
        see `losses.relative_error`; `error`: the error alone), `reconstruction` and
        `reconstruction_error` (the per-image mean squared error, pixels in [0, 1])."""
        pixels = self.prepare(x)  # once: the error and the detail need them too
        reconstruction = self.decode(self._flat_code(pixels))
        error = losses.squared_error(pixels, reconstruction)
        score = (
            error
            if self.anomaly_score == "error"
            else losses.relative_error(error, pixels, power=self.detail_power)
        )
        return {
            "anomaly_score": score,
            "reconstruction": reconstruction,
            "reconstruction_error": error,
        }
