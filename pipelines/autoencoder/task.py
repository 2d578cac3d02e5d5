"""The autoencoder task: images (read as the image pipeline reads them) -> one of six
autoencoders (`tfmodels.autoencoders`) -> anomaly scores, reconstructions and codes.

Training sees the normal classes only (`data.normal_classes`; all classes when empty). After
training, the normal validation images are scored and kept with the model; the export's
anomaly threshold is a percentile of those scores (or a given value), so `tfpipe export`
can move it without the data. Metrics are measured through the serving graph; with labelled
test data and normal classes set, anomaly AUROC and average precision.

Signatures (`serving.py`): `serving_default` (image bytes -> anomaly score, is_anomaly,
threshold, reconstruction PNG, reconstruction error), `reconstruct` (-> PNG and pixels),
`encode` (-> the code; the VAE adds its log variance) and `decode` (a code -> PNG; for the
VAE, random normal codes sample new images).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from pipelines.autoencoder import serving
from pipelines.autoencoder.config import AutoencoderConfig
from pipelines.autoencoder.metrics import auroc, average_precision, psnr, threshold_at
from pipelines.autoencoder.serving import ENCODE, RECONSTRUCT, encode_pngs
from pipelines.core.config import ConfigError
from pipelines.core.random_draws import map_with_seeds
from pipelines.core.task import (
    DEFAULT_SIGNATURE,
    EVAL_BATCH,
    Serving,
    Task,
    read_vocabulary,
    write_vocabulary,
)
from pipelines.image_input.augment import pad_crop
from pipelines.image_input.dataset import ImageSet
from pipelines.image_input.reader import ImageDataError, ImageFileRequests, decode_images
from tfmodels.autoencoders import (
    AutoencoderSpec,
    Corruption,
    LayerwisePretraining,
    VariationalAutoencoder,
    build_autoencoder,
)

LATENT_POINTS = 2000  # test images in the latent-space plot
EVAL_NOISE_SEED = 1  # the corruption of the test images in the denoising figures


class AutoencoderTask(ImageFileRequests, Task):
    name = "autoencoder"
    config_class = AutoencoderConfig
    default_monitor: ClassVar[str] = "val_loss"
    lower_is_better: ClassVar[tuple[str, ...]] = ("reconstruction_error", "negative_elbo")
    calibrated_assets: ClassVar[tuple[str, ...]] = ("normal_scores.json",)  # the threshold's
    predict_input = "image_bytes"
    config: AutoencoderConfig

    def __init__(self, config: AutoencoderConfig, data_dir: Path | None):
        super().__init__(config, data_dir)
        self.images: ImageSet | None = None
        self.image_size: tuple[int, int] = (0, 0)
        self.channels = 0
        self.class_names: list[str] = []
        self.normal_ids: list[int] = []
        self.counts: dict[str, int] = {}
        self.normal_scores: list[float] = []  # normal validation images' (the threshold's)
        self._splits: dict[str, tuple[list[bytes], np.ndarray]] = {}
        self._results: dict[str, dict[str, np.ndarray]] = {}

    # -- data -------------------------------------------------------------------------
    def prepare(self, workdir: Path) -> None:
        data = self.config.data
        self.images = ImageSet.open(data, self.data_dir, self.config.train.seed)
        self.image_size, self.channels = self.images.image_size, self.images.channels
        self.class_names = list(self.images.source.class_names)
        self.normal_ids = self._normal_ids()
        self.check_model_config()
        self.counts = {
            split: int(np.isin(self.images.source.labels(split), self.normal_ids).sum())
            for split in self.images.source.counts
        }
        if not self.counts["train"]:
            raise ImageDataError(
                f"{self.images.source.root}: no training images of the "
                f"normal classes {data.normal_classes}"
            )
        normal = ", ".join(data.normal_classes) or "every class"
        print(
            f"[autoencoder] {self.images.describe()}; normal: {normal} "
            f"({self.counts['train']} training images)",
            flush=True,
        )

    def _normal_ids(self) -> list[int]:
        wanted = self.config.data.normal_classes
        unknown = [c for c in wanted if c not in self.class_names]
        if unknown:
            raise ConfigError(
                f"data.normal_classes: unknown class(es) {', '.join(unknown)} "
                f"(the classes: {', '.join(self.class_names)})"
            )
        return [i for i, c in enumerate(self.class_names) if not wanted or c in wanted]

    def check_config(self) -> None:
        if self.config.data.shift < 0:
            raise ConfigError(f"data.shift must be 0 or more pixels, got {self.config.data.shift}")

    def check_model_config(self) -> None:
        """Fail before training on a model config that cannot be built or trained."""
        spec = self.spec()
        epochs = self.config.train.epochs
        if spec.name == "stacked" and epochs <= spec.pairs * spec.epochs_per_pair:
            raise ConfigError(
                f"model.name=stacked: train.epochs={epochs} leaves no epoch for fine-tuning "
                f"after {spec.pairs} pairs x model.epochs_per_pair={spec.epochs_per_pair}"
            )

    def data_files(self) -> list[Path]:
        return self.images.source.files()

    def _normal_pixels(self, split: str) -> tuple[tf.data.Dataset, bool]:
        """uint8 images of `split`'s normal classes (cached when they fit); the other
        classes' files are not even read."""

        @tf.autograph.experimental.do_not_convert
        def image_only(image, label):
            return image

        ds = self.images.decoded(split, classes=self.normal_ids).map(image_only)
        if not self.images.drops_bad_files():
            # A known length lets Keras show progress and size the schedule.
            ds = ds.apply(tf.data.experimental.assert_cardinality(self.counts[split]))
        return self.images.cached(ds, split, self.counts[split])

    def datasets(self, global_batch_size: int) -> tuple[tf.data.Dataset, tf.data.Dataset | None]:
        """Batches of normal images, float pixels in [0, 1] (no targets: the model's own
        loss rebuilds its input)."""
        count = self.counts["train"]
        train, cached = self._normal_pixels("train")
        buffer = self.config.data.shuffle_buffer or (count if cached else 10_000)
        train = (
            train.shuffle(
                min(buffer, count), seed=self.config.train.seed, reshuffle_each_iteration=True
            )
            .batch(
                global_batch_size,
                drop_remainder=count >= global_batch_size,
                num_parallel_calls=tf.data.AUTOTUNE,
            )
            .map(_to_unit, num_parallel_calls=tf.data.AUTOTUNE)
        )
        if self.config.data.shift > 0:
            shift = self.config.data.shift
            train = map_with_seeds(
                train,
                lambda images, draw_seed: random_shift(images, shift, draw_seed),
                self.config.train.seed,
            )
        train = train.prefetch(tf.data.AUTOTUNE)
        val = None
        if self.counts["validation"]:
            val, _ = self._normal_pixels("validation")
            val = (
                val.batch(global_batch_size)
                .map(_to_unit, num_parallel_calls=tf.data.AUTOTUNE)
                .prefetch(tf.data.AUTOTUNE)
            )
        return train, val

    # -- what the model needs besides its weights ------------------------------------
    def save_assets(self, folder: Path) -> list[Path]:
        """Class names, geometry, and the normal validation scores (the threshold's)."""
        folder.mkdir(parents=True, exist_ok=True)
        stats = folder / "image_stats.json"
        stats.write_text(
            json.dumps({"image_size": list(self.image_size), "channels": self.channels}, indent=1),
            encoding="utf-8",
        )
        scores = folder / "normal_scores.json"
        scores.write_text(
            json.dumps(
                {"scores": self.normal_scores, "anomaly_score": self.config.model.anomaly_score}
            ),
            encoding="utf-8",
        )
        return [write_vocabulary(folder / "labels.txt", self.class_names), stats, scores]

    def load_assets(self, folder: Path) -> None:
        self.class_names = read_vocabulary(folder / "labels.txt")
        stats = json.loads((folder / "image_stats.json").read_text(encoding="utf-8"))
        self.image_size, self.channels = tuple(stats["image_size"]), int(stats["channels"])
        scores = json.loads((folder / "normal_scores.json").read_text(encoding="utf-8"))
        self.normal_scores = [float(s) for s in scores["scores"]]
        # Models kept before `model.anomaly_score` existed scored (and set their threshold)
        # by the plain error, though their kept config reads as the new default. (Their
        # `model.detail_power` default, 1, is what they used: the kept config suffices.)
        self.config.model.anomaly_score = scores.get("anomaly_score", "error")

    # -- model ------------------------------------------------------------------------
    def binarize(self) -> float:
        return self.config.model.binarize_threshold()

    def spec(self) -> AutoencoderSpec:
        try:
            return AutoencoderSpec.from_config(
                self.config.model, (*self.image_size, self.channels), seed=self.config.train.seed
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

    def build_model(self) -> keras.Model:
        return build_autoencoder(self.spec())

    def compile_args(self, model: keras.Model) -> dict[str, Any]:
        return {}  # each autoencoder computes its own loss (`compute_loss`)

    def callbacks(self) -> list[keras.callbacks.Callback]:
        return [LayerwisePretraining()] if self.config.model.name == "stacked" else []

    def calibrate(self, model: keras.Model) -> None:
        """Score the normal validation images (training ones if there is no validation
        split): the threshold is a percentile of these scores."""
        split = "validation" if self.counts.get("validation") else "train"
        data, labels = self._split(split)
        normal = np.isin(labels, self.normal_ids)
        out = self._serve(model, [d for d, n in zip(data, normal, strict=True) if n])
        self.normal_scores = [float(s) for s in out["anomaly_score"]]
        self._serving_fns.clear()  # the threshold is a constant of the serving graphs
        print(
            f"[autoencoder] anomaly threshold {self.threshold():.6g} (from "
            f"{len(self.normal_scores)} normal {split} images)",
            flush=True,
        )

    def threshold(self) -> float:
        """`serving.threshold`, else `serving.threshold_percentile` of the normal scores
        (infinite before there are any: nothing is flagged)."""
        s = self.config.serving
        if s.threshold is not None:
            return float(s.threshold)
        if not self.normal_scores:
            return math.inf
        return threshold_at(np.asarray(self.normal_scores), s.threshold_percentile)

    # -- serving ----------------------------------------------------------------------
    def signatures(self, model: keras.Model) -> dict[str, Serving]:
        return serving.signatures(
            self.config, model, self.image_size, self.channels, self.threshold()
        )

    def warmup_inputs(self) -> dict[str, list[Any]]:
        return {"image_bytes": self.images.encoded_bytes("test", 5)}

    # -- metrics ----------------------------------------------------------------------
    def _split(self, split: str) -> tuple[list[bytes], np.ndarray]:
        """Encoded images and labels of `split`, read once."""
        if split not in self._splits:
            data, labels = [], []
            for d, label in self.images.source.encoded(split, parallel=False).as_numpy_iterator():
                data.append(bytes(d))
                labels.append(int(label))
            self._splits[split] = (data, np.asarray(labels, dtype=np.int64))
        return self._splits[split]

    def _serve(
        self,
        model: keras.Model,
        data: Sequence[Any],
        signature: str = DEFAULT_SIGNATURE,
        name: str = "image_bytes",
    ) -> dict[str, np.ndarray]:
        parts = list(self.serve_batches(model, {name: data}, signature))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}

    def evaluate(self, model: keras.Model, split: str) -> dict[str, float]:
        """Reconstruction error and PSNR of the normal images (the VAE: also its negative
        ELBO, nats). On test also the threshold and the share of normal images it flags;
        with anomalies in the test split, AUROC, average precision and the share of
        anomalies flagged; for the denoising model, the PSNR of corrupted test images and of
        their reconstructions against the clean ones."""
        data, labels = self._split(split)
        normal = np.isin(labels, self.normal_ids)
        if split != "test":  # validation: what training sees, the normal images
            data, labels, normal = (
                [d for d, n in zip(data, normal, strict=True) if n],
                labels[normal],
                normal[normal],
            )
        if not len(data):
            raise ImageDataError(f"no images in the {split} split")
        out = self._serve(model, data)
        self._results[split] = {**out, "labels": labels, "normal": normal}
        errors, scores = out["reconstruction_error"], out["anomaly_score"]
        metrics: dict[str, float] = {}
        if normal.any():
            metrics["reconstruction_error"] = float(np.mean(errors[normal]))
            metrics["psnr"] = float(np.mean(psnr(errors[normal])))
            if isinstance(model, VariationalAutoencoder):
                metrics["negative_elbo"] = float(np.mean(scores[normal]))
        if split != "test":
            return metrics
        flagged = out["is_anomaly"].astype(bool)
        if math.isfinite(self.threshold()):
            metrics["threshold"] = self.threshold()
        if normal.any():
            metrics["normal_flagged"] = float(np.mean(flagged[normal]))
        if normal.any() and not normal.all():
            metrics["auroc"] = auroc(scores, ~normal)
            metrics["average_precision"] = average_precision(scores, ~normal)
            metrics["anomalous_flagged"] = float(np.mean(flagged[~normal]))
        if self.config.model.name == "denoising" and normal.any():
            metrics.update(
                self.denoising_psnr(model, [d for d, n in zip(data, normal, strict=True) if n])
            )
        return metrics

    def corruption(self) -> Corruption:
        """The training corruption, seeded afresh: the same noisy test images every time."""
        m = self.config.model
        return Corruption(m.noise, m.noise_stddev, m.mask_rate, seed=EVAL_NOISE_SEED)

    def denoising_psnr(self, model: keras.Model, data: Sequence[bytes]) -> dict[str, float]:
        """PSNR (dB, mean over images) of the corrupted images and of what the export's
        `reconstruct` makes of them (sent as PNG, as a client would), against the clean."""
        corrupt = self.corruption()
        noisy_psnr, denoised_psnr = [], []
        for start in range(0, len(data), EVAL_BATCH):
            images = tf.constant(list(data[start : start + EVAL_BATCH]))
            clean = model.prepare(
                tf.cast(decode_images(images, self.image_size, self.channels), tf.float32) / 255.0
            )
            noisy = _quantised(corrupt(clean, training=True))
            rebuilt = self._serve(model, list(encode_pngs(noisy).numpy()), RECONSTRUCT)
            clean = clean.numpy()
            noisy_psnr.append(psnr(_mse(noisy.numpy(), clean)))
            denoised_psnr.append(psnr(_mse(rebuilt["pixels"], clean)))
        return {
            "noisy_psnr": float(np.mean(np.concatenate(noisy_psnr))),
            "denoised_psnr": float(np.mean(np.concatenate(denoised_psnr))),
        }

    # -- plots ------------------------------------------------------------------------
    def plots(self, model: keras.Model, out_dir: Path) -> list[Path]:
        """Input / (corrupted /) reconstruction grid, the latent space by class, anomaly
        score histograms; for the VAE, samples and latent interpolations."""
        from pipelines.autoencoder.plots import (
            image_rows_png,
            latent_png,
            plot_sample,
            score_histogram_png,
            vae_pngs,
        )

        out_dir = Path(out_dir)
        if "test" not in self._results:
            self.evaluate(model, "test")
        result = self._results["test"]
        labels, normal = result["labels"], result["normal"]
        scores = result["anomaly_score"]
        title = f"{model.name} ({self.config.model.name})"
        shown = plot_sample(normal, self.config.data.plot_images)
        pixels = model.prepare(self.images.images_at("test", shown).astype(np.float32) / 255.0)
        captions = [
            f"{self.class_names[labels[i]]}{'' if normal[i] else ' (anomaly)'}\n{scores[i]:.3g}"
            for i in shown
        ]
        rows = [("input", pixels.numpy())]
        if self.config.model.name == "denoising":
            noisy = _quantised(self.corruption()(pixels, training=True))
            rows += [
                ("corrupted", noisy.numpy()),
                ("rebuilt from corrupted", model.reconstruct(noisy).numpy()),
            ]
        rows.append(("reconstruction", model.reconstruct(pixels).numpy()))
        paths = [
            image_rows_png(
                rows,
                out_dir / "reconstructions.png",
                f"{title}: test images and reconstructions (score under each)",
                captions,
            )
        ]
        data, _ = self._split("test")
        codes = self._serve(model, data[:LATENT_POINTS], ENCODE)["code"]
        paths.append(
            latent_png(
                codes,
                labels[:LATENT_POINTS],
                self.class_names,
                out_dir / "latent_space.png",
                f"{title}: test images' codes",
            )
        )
        paths.append(
            score_histogram_png(
                scores,
                None if normal.all() else ~normal,
                self.threshold(),
                out_dir / "anomaly_scores.png",
                f"{title}: anomaly scores of the test images",
            )
        )
        if isinstance(model, VariationalAutoencoder):
            paths += vae_pngs(model, codes, self.config.train.seed, out_dir, title)
        return paths

    # -- batch prediction -------------------------------------------------------------
    @classmethod
    def lines_from_response(
        cls,
        outputs: dict[str, np.ndarray],
        signature: str = DEFAULT_SIGNATURE,
        lines: Sequence[str] = (),
    ) -> list[str]:
        return serving.lines_from_response(outputs, signature, lines)


@tf.autograph.experimental.do_not_convert
def _to_unit(images):
    return tf.cast(images, tf.float32) / 255.0


def random_shift(images: tf.Tensor, pixels: int, seed: tf.Tensor) -> tf.Tensor:
    """Each image of `[B, H, W, C]` moved by up to `pixels` in each direction (zeros fill
    in), the moves drawn from the stateless `seed` (`[2]` int64)."""
    offsets = tf.random.stateless_uniform(
        [tf.shape(images)[0], 2], seed, 0, 2 * pixels + 1, tf.int32
    )
    return pad_crop(images, pixels, offsets)


def _quantised(pixels: tf.Tensor) -> tf.Tensor:
    """Pixels as an 8-bit image holds them (what a client can send)."""
    return tf.round(tf.clip_by_value(pixels, 0.0, 1.0) * 255.0) / 255.0


def _mse(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.mean(np.square(np.asarray(a, np.float64) - b), axis=tuple(range(1, a.ndim)))
