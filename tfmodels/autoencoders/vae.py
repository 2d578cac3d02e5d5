"""Variational autoencoder: a Gaussian posterior q(z|x), the reparameterisation trick, a
standard normal prior and a Bernoulli or Gaussian decoder p(x|z).

The loss (`compute_loss`) is the negative ELBO in nats per image,
`-E_q[log p(x|z)] + beta * KL(q(z|x) || p(z))`, with one reparameterised sample per image;
`beta` rises linearly from 0 to 1 over the first `kl_warmup_steps` training steps (KL
warm-up, read from the optimizer's step count, which checkpoints keep) and is 1 in
evaluation, so `val_loss` is the negative ELBO itself.

Serving (`score`) estimates the negative ELBO of each image with `samples` draws of fixed
noise, shared by every image, so an image's score does not depend on the request it came
in or its place in it. The Bernoulli decoder outputs logits (the image is their sigmoid);
the Gaussian one outputs the mean, with one learned standard deviation for every pixel.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfmodels.autoencoders import losses
from tfmodels.autoencoders.blocks import unit_pixels

LIKELIHOODS = ("bernoulli", "gaussian")
LOG_SIGMA_RANGE = (-4.6, 2.0)  # Gaussian decoder: sigma between 0.01 and 7.4
SERVING_SEED = (1234, 5678)


class VariationalAutoencoder(keras.Model):
    """`encoder`: pixels -> `[z_mean, z_log_var]`; `decoder`: z -> logits (Bernoulli) or
    means in [0, 1] (Gaussian). Logged terms: `reconstruction_loss` (-log p(x|z), nats)
    and `kl` (nats)."""

    def __init__(
        self,
        encoder: keras.Model,
        decoder: keras.Model,
        *,
        likelihood: str = "bernoulli",
        binarize: float = 0.0,
        kl_warmup_steps: int = 0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"model.decoder: unknown '{likelihood}' ({', '.join(LIKELIHOODS)})")
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.binarize = float(binarize)
        self.kl_warmup_steps = int(kl_warmup_steps)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.log_sigma = (
            self.add_weight(shape=(), initializer="zeros", name="log_sigma")
            if likelihood == "gaussian"
            else None
        )
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    @property
    def code_size(self) -> int:
        return int(self.encoder.outputs[0].shape[-1])

    def prepare(self, x) -> tf.Tensor:
        return unit_pixels(x, self.binarize)

    def posterior(self, x, training=False) -> tuple[tf.Tensor, tf.Tensor]:
        """(mean, log variance) of q(z|x), float32."""
        return self._posterior_of(self.prepare(x), training)

    def _posterior_of(self, pixels, training=False) -> tuple[tf.Tensor, tf.Tensor]:
        z_mean, z_log_var = self.encoder(pixels, training=training)
        return tf.cast(z_mean, tf.float32), tf.cast(z_log_var, tf.float32)

    def call(self, x, training=False):
        z_mean, z_log_var = self.posterior(x, training)
        noise = keras.random.normal(keras.ops.shape(z_mean), seed=self.seed_generator)
        z = z_mean + tf.exp(0.5 * z_log_var) * noise
        return {
            "decoded": self.decoder(z, training=training),
            "z_mean": z_mean,
            "z_log_var": z_log_var,
        }

    # -- the likelihood ---------------------------------------------------------------
    def sigma_log(self) -> tf.Tensor:
        return tf.clip_by_value(tf.cast(self.log_sigma, tf.float32), *LOG_SIGMA_RANGE)

    def negative_log_likelihood(self, target, decoded) -> tf.Tensor:
        """-log p(x|z) per image, nats."""
        if self.likelihood == "bernoulli":
            return losses.bernoulli_nll(target, decoded)
        return losses.gaussian_nll(target, decoded, self.sigma_log())

    def kl_weight(self, training: bool) -> tf.Tensor:
        """beta: 1, or during the warm-up of training (step + 1) / kl_warmup_steps."""
        optimizer = getattr(self, "optimizer", None)
        if not training or self.kl_warmup_steps <= 0 or optimizer is None:
            return tf.constant(1.0)
        step = tf.cast(optimizer.iterations, tf.float32) + 1.0
        return tf.minimum(1.0, step / float(self.kl_warmup_steps))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        nll = self.negative_log_likelihood(self.prepare(x), y_pred["decoded"])
        kl = losses.gaussian_kl(y_pred["z_mean"], y_pred["z_log_var"])
        self.reconstruction_tracker.update_state(nll)
        self.kl_tracker.update_state(kl)
        return losses.replica_mean(nll + self.kl_weight(training) * kl)

    # -- serving (inference mode) -----------------------------------------------------
    def encode(self, x) -> tf.Tensor:
        """The posterior mean."""
        return self.posterior(x)[0]

    def decode(self, code) -> tf.Tensor:
        """Pixels in [0, 1]: the decoder's mean image for each code."""
        decoded = tf.cast(self.decoder(code, training=False), tf.float32)
        return tf.sigmoid(decoded) if self.likelihood == "bernoulli" else decoded

    def reconstruct(self, x) -> tf.Tensor:
        return self.decode(self.encode(x))

    def negative_elbo(self, x, samples: int = 1, seed=SERVING_SEED) -> tf.Tensor:
        """-ELBO per image, nats: -log p(x|z) averaged over `samples` fixed draws of z,
        plus the KL term in closed form."""
        target = self.prepare(x)
        return self._negative_elbo_of(target, *self._posterior_of(target), samples, seed)

    def _negative_elbo_of(
        self, target, z_mean, z_log_var, samples: int, seed=SERVING_SEED
    ) -> tf.Tensor:
        size = self.code_size
        noise = tf.random.stateless_normal((samples, size), seed=seed)
        z = z_mean[:, None] + tf.exp(0.5 * z_log_var)[:, None] * noise[None]  # [B, S, D]
        decoded = self.decoder(tf.reshape(z, (-1, size)), training=False)
        targets = tf.repeat(target, samples, axis=0)  # image-major, as z
        nll = tf.reshape(self.negative_log_likelihood(targets, decoded), (-1, samples))
        return tf.reduce_mean(nll, axis=1) + losses.gaussian_kl(z_mean, z_log_var)

    def score(self, x, samples: int = 1) -> dict[str, tf.Tensor]:
        """`anomaly_score` (the negative ELBO, nats), `reconstruction` (decoded from the
        posterior mean) and `reconstruction_error` (its mean squared error)."""
        target = self.prepare(x)  # once, and the posterior once, for all three outputs
        z_mean, z_log_var = self._posterior_of(target)
        reconstruction = self.decode(z_mean)
        return {
            "anomaly_score": self._negative_elbo_of(target, z_mean, z_log_var, samples),
            "reconstruction": reconstruction,
            "reconstruction_error": losses.squared_error(target, reconstruction),
        }
