"""The image-classification task: folder or TFRecord images -> classifier -> labels.

What the runner needs from this pipeline and nothing more: checked, cached, shuffled
`tf.data` input; a `tfmodels.vision` classifier with its preprocessing as layers; metrics
measured through the serving function (raw image bytes in, labels out); explanation plots.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from pipelines.core.precision import global_policy
from pipelines.core.task import (
    DEFAULT_SIGNATURE,
    EVAL_BATCH,
    Serving,
    Task,
    read_vocabulary,
    write_vocabulary,
)
from pipelines.image_input.dataset import ImageSet, image_root
from pipelines.image_input.reader import ImageDataError, ImageFileRequests
from pipelines.image_input.source import ImageSource
from pipelines.images import serving
from pipelines.images.config import ImagesConfig
from pipelines.images.preprocessing import make_preprocess
from tfmodels.layers import fused_batch_norm
from tfmodels.losses import SmoothedSparseCategoricalCrossentropy
from tfmodels.vision import build_classifier

log = logging.getLogger(__name__)

STATS_IMAGES = 5000


class ImagesTask(ImageFileRequests, Task):
    name = "images"
    config_class = ImagesConfig
    default_monitor = "val_accuracy"
    predict_input = "image_bytes"

    def __init__(self, config: ImagesConfig, data_dir: Path):
        super().__init__(config, data_dir)
        self.config: ImagesConfig = config
        self.images: ImageSet | None = None
        self.source: ImageSource | None = None
        self.image_size: tuple[int, int] = (0, 0)
        self.channels = 0
        self.mean: list[float] = []
        self.std: list[float] = []
        self.class_names: list[str] = []
        self._predictions: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    # -- data -------------------------------------------------------------------------
    def image_root(self) -> Path:
        """`data.path` under the data dir (see `pipelines.image_input.dataset.image_root`)."""
        return image_root(self.config.data, self.data_dir)

    def prepare(self, workdir: Path) -> None:
        self.images = ImageSet.open(self.config.data, self.data_dir, self.config.train.seed)
        self.source = self.images.source
        self.image_size, self.channels = self.images.image_size, self.images.channels
        self.mean, self.std = self._channel_stats()
        print(f"[images] {self.images.describe()}", flush=True)
        self.class_names = list(self.source.class_names)

    def data_files(self) -> list[Path]:
        return self.source.files()

    def save_assets(self, folder: Path) -> list[Path]:
        """Class names, and the geometry and pixel statistics the model was built with."""
        folder.mkdir(parents=True, exist_ok=True)
        stats = folder / "image_stats.json"
        stats.write_text(
            json.dumps(
                {
                    "image_size": list(self.image_size),
                    "channels": self.channels,
                    "mean": self.mean,
                    "std": self.std,
                },
                indent=1,
            ),
            encoding="utf-8",
        )
        return [write_vocabulary(folder / "labels.txt", self.class_names), stats]

    def load_assets(self, folder: Path) -> None:
        self.class_names = read_vocabulary(folder / "labels.txt")
        stats = json.loads((folder / "image_stats.json").read_text(encoding="utf-8"))
        self.image_size = tuple(stats["image_size"])
        self.channels = int(stats["channels"])
        self.mean, self.std = list(stats["mean"]), list(stats["std"])

    def decoded(self, split: str, parallel: bool = True) -> tf.data.Dataset:
        """`(uint8 image, int32 label)` of `split`, decoded in parallel."""
        return self.images.decoded(split, parallel)

    def _cached(self, ds: tf.data.Dataset, split: str) -> tuple[tf.data.Dataset, bool]:
        return self.images.cached(ds, split)

    def datasets(self, global_batch_size: int) -> tuple[tf.data.Dataset, tf.data.Dataset | None]:
        data, seed = self.config.data, self.config.train.seed
        count = self.source.counts["train"]
        train = self.decoded("train")
        if train.cardinality() == tf.data.UNKNOWN_CARDINALITY and not self.images.drops_bad_files():
            # TFRecords: the count is known from meta.json; a known length lets Keras show
            # progress and size the schedule from the first epoch.
            train = train.apply(tf.data.experimental.assert_cardinality(count))
        train, cached = self._cached(train, "train")
        buffer = data.shuffle_buffer or (count if cached else 10_000)
        train = (
            train.shuffle(min(buffer, count), seed=seed, reshuffle_each_iteration=True)
            .batch(
                global_batch_size,
                drop_remainder=count >= global_batch_size,
                num_parallel_calls=tf.data.AUTOTUNE,
            )
            .map(_to_float, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE)
        )
        val = None
        if self.source.counts["validation"]:
            val, _ = self._cached(self.decoded("validation"), "validation")
            val = (
                val.batch(global_batch_size)
                .map(_to_float, num_parallel_calls=tf.data.AUTOTUNE)
                .prefetch(tf.data.AUTOTUNE)
            )
        return train, val

    def _channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std (0-1 scale) of up to 5,000 training images."""
        total = np.zeros(self.channels)
        squares = np.zeros(self.channels)
        pixels = 0
        for images, _ in self.decoded("train").take(STATS_IMAGES).batch(500):
            x = images.numpy().astype(np.float64) / 255.0
            total += x.sum(axis=(0, 1, 2))
            squares += (x**2).sum(axis=(0, 1, 2))
            pixels += x.shape[0] * x.shape[1] * x.shape[2]
        mean = total / max(pixels, 1)
        std = np.sqrt(np.maximum(squares / max(pixels, 1) - mean**2, 1e-6))
        return [float(v) for v in mean], [float(v) for v in std]

    # -- model ------------------------------------------------------------------------
    def build_model(self) -> keras.Model:
        model_cfg = self.config.model
        with fused_batch_norm(model_cfg.fused_batch_norm):
            return build_classifier(
                model_cfg.name,
                (*self.image_size, self.channels),
                len(self.class_names),
                preprocess=make_preprocess(
                    self.config.data, self.mean, self.std, seed=self.config.train.seed
                ),
                width=model_cfg.width,
                dropout=None if model_cfg.dropout < 0 else model_cfg.dropout,
            )

    def compile_args(self, model: keras.Model) -> dict[str, Any]:
        smoothing = self.config.model.label_smoothing
        loss = (
            SmoothedSparseCategoricalCrossentropy(smoothing)
            if smoothing > 0
            else keras.losses.SparseCategoricalCrossentropy()
        )
        return {
            "loss": loss,
            "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        }

    # -- serving ----------------------------------------------------------------------
    def signatures(self, model: keras.Model) -> dict[str, Serving]:
        return serving.signatures(
            self.config, model, self.class_names, self.image_size, self.channels
        )

    def warmup_inputs(self) -> dict[str, list[Any]]:
        return {"image_bytes": self.images.encoded_bytes("test", 5)}

    # -- metrics ----------------------------------------------------------------------
    def predict_split(self, model: keras.Model, split: str) -> tuple[np.ndarray, ...]:
        """(labels, predicted class ids, their probabilities) through the serving graph."""
        serve, _ = self.serving_function(model)
        labels, predicted, probability = [], [], []
        for data, label in self.source.encoded(split, parallel=False).batch(EVAL_BATCH):
            out = serve(data)
            labels.append(label.numpy())
            predicted.append(out["class_id"].numpy())
            probability.append(out["probability"].numpy())
        result = tuple(
            np.concatenate(v) if v else np.zeros(0) for v in (labels, predicted, probability)
        )
        self._predictions[split] = result
        return result

    def evaluate(self, model: keras.Model, split: str) -> dict[str, float]:
        labels, predicted, _ = self.predict_split(model, split)
        if not len(labels):
            raise ImageDataError(f"no images in the {split} split")
        return {"accuracy": float(np.mean(labels == predicted))}

    # -- plots ------------------------------------------------------------------------
    def plots(self, model: keras.Model, out_dir: Path) -> list[Path]:
        from pipelines.core.plots import confusion_matrix_png
        from pipelines.images.explain import explanation_grid, misclassified_grid

        out_dir = Path(out_dir)
        names = self.class_names
        labels, predicted, probability = self._predictions.get("test") or self.predict_split(
            model, "test"
        )
        paths = [
            confusion_matrix_png(
                names,
                labels,
                predicted,
                out_dir / "confusion_matrix.png",
                title=f"{model.name}: test confusion matrix",
            )
        ]
        wrong = np.flatnonzero(labels != predicted)[: self.config.data.misclassified_images]
        images = self.test_images(wrong)
        paths.append(
            misclassified_grid(
                images,
                labels[wrong],
                predicted[wrong],
                probability[wrong],
                names,
                out_dir / "misclassified.png",
            )
        )
        sample = explain_sample(labels, self.config.data.explain_images)
        if len(sample):
            paths.append(
                explanation_grid(
                    self.logits_model(model),
                    self.test_images(sample),
                    labels[sample],
                    predicted[sample],
                    names,
                    out_dir / "explanations.png",
                )
            )
        return paths

    def test_images(self, indices: Sequence[int]) -> np.ndarray:
        """Decoded test images at `indices` (in the order given)."""
        return self.images.images_at("test", indices)

    def logits_model(self, model: keras.Model) -> keras.Model:
        """A float32 copy of `model` that outputs logits, for gradient-based explanations."""
        with global_policy("float32"):
            copy = self.build_model()
        copy.set_weights(model.get_weights())
        return keras.Model(copy.inputs, copy.get_layer("logits").output, name=model.name)

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
def _to_float(images, labels):
    return tf.cast(images, tf.float32), labels


def explain_sample(labels: np.ndarray, count: int) -> np.ndarray:
    """A fixed sample of test indices, classes taken in turn (the first of each, then...)."""
    by_class = [list(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    chosen: list[int] = []
    while len(chosen) < count and any(by_class):
        for members in by_class:
            if members and len(chosen) < count:
                chosen.append(int(members.pop(0)))
    return np.array(sorted(chosen), dtype=np.int64)
