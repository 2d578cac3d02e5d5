"""The autoencoders' parts in-process: noise only in training, the sparsity penalty and the
KL term in the loss, the negative ELBO on cases known in closed form, layer-wise
pretraining that leaves the frozen pairs untouched, odd image sizes, the anomaly metrics
against known values, and image bytes that are not images."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import DATA

from pipelines.autoencoder.metrics import auroc, average_precision, psnr, threshold_at
from pipelines.image_input.reader import decode_images
from tfmodels.autoencoders import (
    AutoencoderSpec,
    Corruption,
    LayerwisePretraining,
    build_autoencoder,
)


def images(count: int = 16, shape=(8, 8, 1), seed: int = 0, binary: bool = False) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(size=(count, *shape)).astype(np.float32)
    return (x > 0.5).astype(np.float32) if binary else x


def softplus(x):
    return np.log1p(np.exp(x))


def test_corruption_is_noise_in_training_and_identity_at_inference():
    x = np.full((64, 8, 8, 1), 0.5, np.float32)
    gaussian = Corruption("gaussian", stddev=0.1, seed=1)
    np.testing.assert_array_equal(gaussian(x, training=False), x)
    noisy = gaussian(x, training=True).numpy()
    assert 0.09 < np.std(noisy - x) < 0.11
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0
    masking = Corruption("masking", rate=0.3, seed=1)
    np.testing.assert_array_equal(masking(x, training=False), x)
    masked = masking(x, training=True).numpy()
    assert set(np.unique(masked)) == {0.0, 0.5}
    assert 0.25 < np.mean(masked == 0) < 0.35


def test_denoising_model_rebuilds_the_clean_input_from_a_corrupted_one():
    model = build_autoencoder(
        AutoencoderSpec(
            "denoising", (8, 8, 1), base="dense", hidden=(16,), code_size=4, noise_stddev=0.3
        )
    )
    x = images()
    served = model.reconstruct(x).numpy()
    np.testing.assert_array_equal(served, model.reconstruct(x).numpy())  # no noise served
    inference = model(x, training=False)
    np.testing.assert_array_equal(inference["input"], x)
    np.testing.assert_allclose(inference["reconstruction"], served, atol=1e-6)

    out = model(x, training=True)
    corrupted, rebuilt = out["input"].numpy(), out["reconstruction"].numpy()
    assert np.abs(corrupted - x).mean() > 0.1
    loss = float(model.compute_loss(x, None, out, training=True))
    assert loss == pytest.approx(np.mean((rebuilt - x) ** 2), rel=1e-5)  # the clean target
    assert loss != pytest.approx(np.mean((rebuilt - corrupted) ** 2), rel=1e-3)
    # The other models are never corrupted, in training either.
    plain = build_autoencoder(AutoencoderSpec("dense", (8, 8, 1), hidden=(16,), code_size=4))
    np.testing.assert_array_equal(plain(x, training=True)["input"], x)


@pytest.mark.parametrize("kind", ["l1", "kl"])
def test_sparsity_penalty_is_in_the_loss(kind):
    target, weight = 0.1, 0.5
    model = build_autoencoder(
        AutoencoderSpec(
            "sparse",
            (8, 8, 1),
            base="dense",
            hidden=(16,),
            code_size=6,
            sparsity=kind,
            sparsity_weight=weight,
            sparsity_target=target,
        )
    )
    x = images()
    out = model(x, training=True)
    code = out["code"].numpy().astype(np.float64)
    reconstruction = np.mean((out["reconstruction"].numpy() - x) ** 2)
    if kind == "l1":
        assert code.min() >= 0  # a relu code
        penalty = np.abs(code).sum(axis=1).mean()
    else:
        assert 0 < code.min() and code.max() < 1  # a sigmoid code
        rate = code.mean(axis=0)
        penalty = np.sum(
            target * np.log(target / rate) + (1 - target) * np.log((1 - target) / (1 - rate))
        )
    assert penalty > 0.01
    assert float(model.compute_loss(x, None, out)) == pytest.approx(
        reconstruction + weight * penalty, rel=1e-4
    )
    model.sparsity_weight = 0.0
    assert float(model.compute_loss(x, None, out)) == pytest.approx(reconstruction, rel=1e-5)


def test_vae_loss_is_reconstruction_plus_kl_warmed_up_in_training_only():
    model = build_autoencoder(
        AutoencoderSpec(
            "vae", (8, 8, 1), base="dense", hidden=(16,), code_size=3, kl_warmup_steps=4
        )
    )
    model.compile(optimizer=keras.optimizers.Adam())
    x = images(binary=True)
    out = model(x, training=True)
    logits = out["decoded"].numpy().astype(np.float64)
    nll = np.sum(softplus(logits) - x * logits, axis=(1, 2, 3))
    mean, log_var = (out[k].numpy().astype(np.float64) for k in ("z_mean", "z_log_var"))
    kl = 0.5 * np.sum(mean**2 + np.exp(log_var) - 1 - log_var, axis=1)
    assert kl.mean() > 0.01
    assert float(model.compute_loss(x, None, out, training=False)) == pytest.approx(
        np.mean(nll + kl), rel=1e-5
    )
    # Step 0 of a 4-step warm-up: the KL term weighs 1/4.
    assert float(model.compute_loss(x, None, out, training=True)) == pytest.approx(
        np.mean(nll + kl / 4), rel=1e-5
    )
    model.optimizer.iterations.assign(10)
    assert float(model.compute_loss(x, None, out, training=True)) == pytest.approx(
        np.mean(nll + kl), rel=1e-5
    )


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_negative_elbo_on_a_known_case(likelihood):
    """All weights zero but the posterior's biases and the output bias: q(z|x) is a fixed
    Gaussian and p(x|z) the same for every z, so -ELBO = -log p(x) + KL in closed form."""
    model = build_autoencoder(
        AutoencoderSpec(
            "vae", (6, 6, 1), base="dense", hidden=(8,), code_size=2, likelihood=likelihood
        )
    )
    for variable in model.weights:
        variable.assign(np.zeros(variable.shape, variable.dtype))
    mean, log_var, bias, log_sigma = np.array([0.5, -1.0]), np.array([0.2, -0.3]), 0.7, -1.0
    model.encoder.get_layer("z_mean").bias.assign(mean)
    model.encoder.get_layer("z_log_var").bias.assign(log_var)
    output = model.decoder.get_layer("decoder_0").get_layer("dec0_dense")
    output.bias.assign(np.full(36, bias))
    x = images(5, (6, 6, 1), binary=True).astype(np.float64)
    if likelihood == "bernoulli":
        nll = 36 * softplus(bias) - bias * x.sum(axis=(1, 2, 3))
    else:
        model.log_sigma.assign(log_sigma)
        centre = 1 / (1 + math.exp(-bias))
        nll = np.sum(
            0.5 * math.log(2 * math.pi)
            + log_sigma
            + 0.5 * ((x - centre) / math.exp(log_sigma)) ** 2,
            axis=(1, 2, 3),
        )
    expected = nll + 0.5 * np.sum(mean**2 + np.exp(log_var) - 1 - log_var)
    np.testing.assert_allclose(
        model.negative_elbo(x.astype(np.float32), samples=3), expected, rtol=1e-5
    )
    np.testing.assert_allclose(
        model.score(x.astype(np.float32))["anomaly_score"], expected, rtol=1e-5
    )
    loss = model.compute_loss(x, None, model(x.astype(np.float32)), training=False)
    assert float(loss) == pytest.approx(expected.mean(), rel=1e-5)


def test_stacked_pretraining_trains_one_pair_at_a_time_then_the_whole():
    model = build_autoencoder(
        AutoencoderSpec(
            "stacked", (6, 6, 1), base="dense", hidden=(12,), code_size=4, epochs_per_pair=1
        )
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    pairs = list(zip(model.encoder_blocks, model.decoder_blocks, strict=True))

    def state():
        return [[w.copy() for block in pair for w in block.get_weights()] for pair in pairs]

    snapshots, phases = [state()], []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append(state())
            phases.append(logs["phase"])

    model.fit(
        images(32, (6, 6, 1)),
        batch_size=8,
        epochs=3,
        verbose=0,
        callbacks=[LayerwisePretraining(), Snapshot()],
    )

    def moved(before, after, pair):
        return any(not np.array_equal(a, b) for a, b in zip(before[pair], after[pair], strict=True))

    start, first, second, tuned = snapshots
    assert phases == [0.0, 1.0, 2.0]
    assert moved(start, first, 0) and not moved(start, first, 1)  # phase 0: pair 0 alone
    assert moved(first, second, 1) and not moved(first, second, 0)  # phase 1: pair 1 alone
    assert moved(second, tuned, 0) and moved(second, tuned, 1)  # fine-tuning: all of it
    assert all(w.trainable for w in model.weights)  # left trainable after fit


@pytest.mark.parametrize("shape", [(28, 28, 1), (7, 9, 3)])
@pytest.mark.parametrize("depth", [0, 2])
def test_conv_autoencoders_give_back_the_input_size(shape, depth):
    for name in ("conv", "stacked", "vae"):
        model = build_autoencoder(
            AutoencoderSpec(name, shape, filters=(4, 4, 4), code_size=3, depth=depth)
        )
        assert tuple(model.reconstruct(np.zeros((2, *shape), np.float32)).shape) == (2, *shape)
        assert tuple(model.encode(np.zeros((2, *shape), np.float32)).shape) == (2, 3)
        convs = [w for w in model.weights if "conv" in w.path and w.path.endswith("kernel")]
        assert len(convs) == 2 * 3 * (1 + depth)  # each block's, encoder and decoder


def test_convolutional_code_is_the_last_feature_map_flattened():
    """`code_size` 0: no dense layer; `encode` gives the last conv block's features as flat
    rows, which `decode` takes back. Models that need a vector code refuse it."""
    images = np.random.default_rng(0).random((2, 28, 28, 1)).astype(np.float32)
    for name in ("conv", "denoising"):
        model = build_autoencoder(AutoencoderSpec(name, (28, 28, 1), filters=(4, 6), code_size=0))
        assert model.code_shape == (7, 7, 6) and model.code_size == 7 * 7 * 6
        assert not [w for w in model.weights if "dense" in w.path]
        code = model.encode(images)
        assert tuple(code.shape) == (2, 7 * 7 * 6)
        np.testing.assert_allclose(model.decode(code).numpy(), model.reconstruct(images).numpy())
    for name, base in (
        ("vae", "conv"),
        ("stacked", "conv"),
        ("sparse", "conv"),
        ("dense", "conv"),
        ("denoising", "dense"),
    ):
        with pytest.raises(ValueError, match="code_size"):
            AutoencoderSpec(name, (28, 28, 1), base=base, code_size=0)


def test_random_shift_moves_each_image_within_its_bound():
    from pipelines.autoencoder.task import random_shift

    images = np.zeros((64, 9, 9, 1), np.float32)
    images[:, 4, 4] = 1.0  # one lit pixel in the middle
    moved = random_shift(tf.constant(images), 2, tf.constant([3, 0], tf.int64)).numpy()
    assert moved.shape == images.shape and (moved.sum(axis=(1, 2, 3)) == 1).all()
    rows, cols = np.nonzero(moved[..., 0])[1:]
    assert set(rows.tolist()) == set(cols.tolist()) == {2, 3, 4, 5, 6}  # every move, no more
    again = random_shift(tf.constant(images), 2, tf.constant([3, 0], tf.int64)).numpy()
    assert (again == moved).all()  # stateless: the seed decides


def test_relative_error_divides_the_error_by_the_image_s_own_fine_detail():
    """The default anomaly score is the squared error over the mean squared difference of
    neighbouring pixels (across plus down, plus 1e-4): of two images rebuilt equally badly,
    the plainer one scores higher; `model.anomaly_score=error` keeps the plain error."""
    x = images(6, (8, 8, 1))
    x[0] = 0.5  # a flat image has no fine detail: only the floor divides its error
    detail = (np.diff(x, axis=2) ** 2).mean(axis=(1, 2, 3)) + (np.diff(x, axis=1) ** 2).mean(
        axis=(1, 2, 3)
    )
    assert detail[0] == pytest.approx(0.0, abs=1e-12) and (detail[1:] > 0.01).all()
    model = build_autoencoder(AutoencoderSpec("conv", (8, 8, 1), filters=(4,), code_size=3))
    assert model.anomaly_score == "relative_error"
    scored = model.score(x)
    error = ((model.reconstruct(x).numpy() - x) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(scored["reconstruction_error"], error, rtol=1e-5)
    np.testing.assert_allclose(scored["anomaly_score"], error / (detail + 1e-4), rtol=1e-4)
    plain = build_autoencoder(
        AutoencoderSpec("conv", (8, 8, 1), filters=(4,), code_size=3, anomaly_score="error")
    )
    plain.set_weights(model.get_weights())
    np.testing.assert_allclose(plain.score(x)["anomaly_score"], error, rtol=1e-5)
    weaker = build_autoencoder(
        AutoencoderSpec("conv", (8, 8, 1), filters=(4,), code_size=3, detail_power=0.75)
    )
    weaker.set_weights(model.get_weights())
    np.testing.assert_allclose(
        weaker.score(x)["anomaly_score"], error / (detail + 1e-4) ** 0.75, rtol=1e-4
    )
    with pytest.raises(ValueError, match="model.anomaly_score: unknown 'psnr'"):
        AutoencoderSpec("conv", (8, 8, 1), anomaly_score="psnr")
    with pytest.raises(ValueError, match="model.detail_power must be between 0 and 2"):
        AutoencoderSpec("conv", (8, 8, 1), detail_power=-1)


def test_anomaly_metrics_on_known_cases():
    scores, anomalous = np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1], bool)
    assert auroc(scores, anomalous) == pytest.approx(0.75)  # scikit-learn's values
    assert average_precision(scores, anomalous) == pytest.approx(0.8333333)
    assert auroc(-scores, anomalous) == pytest.approx(0.25)
    ties = np.ones(4)
    assert auroc(ties, anomalous) == pytest.approx(0.5)
    assert average_precision(ties, anomalous) == pytest.approx(0.5)
    assert auroc(np.arange(6.0), np.arange(6) >= 3) == 1.0
    assert average_precision(np.arange(6.0), np.arange(6) >= 3) == 1.0
    assert psnr(np.array([0.01, 1e-4])) == pytest.approx([20.0, 40.0])
    assert threshold_at(np.arange(1.0, 101.0), 95) == pytest.approx(95.05)
    with pytest.raises(ValueError, match="both"):
        auroc(scores, np.zeros(4, bool))


def test_image_bytes_that_are_not_images_fail_naming_their_positions():
    png = next((DATA / "images" / "test").rglob("*.png")).read_bytes()
    assert tuple(decode_images(tf.constant([png]), (8, 8), 1).shape) == (1, 8, 8, 1)
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r"image_bytes: element\(s\) \[1 2\] are not JPEG, PNG"
    ):
        decode_images(tf.constant([png, b"not an image", b""]), (8, 8), 1)
