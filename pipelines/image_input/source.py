"""One view of an image set, whether it is a folder of files or TFRecord shards."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from pipelines.image_input import tfrecord
from pipelines.image_input.config import ImageReadConfig
from pipelines.image_input.reader import (
    SPLITS,
    ImageDataError,
    Split,
    dominant_geometry,
    inspect_images,
    report_bad,
    scan_folder,
)


@dataclasses.dataclass
class ImageSource:
    """Class names, geometry and per-split `(encoded bytes, label)` datasets."""

    root: Path
    class_names: list[str]
    image_size: tuple[int, int]  # the most common size of the training images
    channels: int  # 1 if every training image is grey, else 3
    counts: dict[str, int]
    folder_splits: dict[str, Split] | None = None
    tfrecord_files: dict[str, list[Path]] | None = None

    def encoded(
        self, split: str, parallel: bool = True, classes: Sequence[int] | None = None
    ) -> tf.data.Dataset:
        """`(encoded bytes, label)` of `split`, in a fixed order; with `classes`, only the
        images of those class ids (folders: chosen before any file is read; TFRecords:
        before any image is decoded)."""
        if self.tfrecord_files is not None:
            ds = tfrecord.encoded_dataset(self.tfrecord_files[split], parallel)
            ds = ds.take(self.counts[split])
            if classes is not None:
                wanted = tf.constant(list(classes), tf.int64)
                ds = ds.filter(
                    lambda data, label: tf.reduce_any(tf.equal(tf.cast(label, tf.int64), wanted))
                )
            return ds
        files = self.folder_splits[split]
        if classes is not None:
            files = files.subset(np.flatnonzero(np.isin(files.labels, list(classes))))
        ds = tf.data.Dataset.from_tensor_slices(
            (tf.constant(files.paths, tf.string), np.asarray(files.labels, dtype=np.int64))
        )
        return ds.map(_read, num_parallel_calls=tf.data.AUTOTUNE)

    def labels(self, split: str) -> np.ndarray:
        """Class ids of `split`, in the order of `encoded` (TFRecords: read once)."""
        if self.tfrecord_files is None:
            return np.asarray(self.folder_splits[split].labels, dtype=np.int64)
        found = [int(label) for _, label in self.encoded(split, parallel=False).as_numpy_iterator()]
        return np.asarray(found, dtype=np.int64)

    def files(self) -> list[Path]:
        if self.tfrecord_files is not None:
            shards = [f for name in SPLITS for f in self.tfrecord_files[name]]
            return [self.root / tfrecord.META_FILE, *shards]
        return [Path(p) for name in SPLITS for p in self.folder_splits[name].paths]


@tf.autograph.experimental.do_not_convert
def _read(path, label):
    return tf.io.read_file(path), label


def open_source(root: Path, cfg: ImageReadConfig, seed: int = 0) -> ImageSource:
    """Scan (and check, unless `cfg.validate` is off) a folder, or read a TFRecord set."""
    root = Path(root)
    if tfrecord.is_tfrecord_dir(root):
        meta = tfrecord.read_meta(root)
        files = {name: [root / f for f in meta["splits"][name]["files"]] for name in SPLITS}
        counts = {name: int(meta["splits"][name]["count"]) for name in SPLITS}
        if cfg.max_train_images:
            counts["train"] = min(counts["train"], cfg.max_train_images)
        source = ImageSource(
            root,
            list(meta["classes"]),
            tuple(meta["image_size"]),
            int(meta["channels"]),
            counts,
            tfrecord_files=files,
        )
    else:
        splits, class_names = scan_folder(
            root,
            cfg.val_fraction,
            cfg.test_fraction,
            seed,
            label_pattern=cfg.label_pattern,
            order=cfg.carve,
            on_bad_image=cfg.on_bad_image,
        )
        if cfg.max_train_images and len(splits["train"]) > cfg.max_train_images:
            order = np.random.default_rng(seed).permutation(len(splits["train"]))
            splits["train"] = splits["train"].subset(np.sort(order[: cfg.max_train_images]))
        # Every split is checked before any is reported, so one error names all bad files.
        checked = {
            name: splits[name].paths if cfg.validate else splits[name].paths[:64] for name in SPLITS
        }
        all_paths = [p for name in SPLITS for p in checked[name]]
        shapes, bad = inspect_images(all_paths)
        report_bad(bad, cfg.on_bad_image)
        bad_paths = {p for p, _ in bad}
        shapes_by_split, start = {}, 0
        for name in SPLITS:
            paths = checked[name]
            keep = np.array([i for i, p in enumerate(paths) if p not in bad_paths], dtype=int)
            shapes_by_split[name] = shapes[start : start + len(paths)][keep]
            start += len(paths)
            if cfg.validate:
                splits[name] = splits[name].subset(keep)
        image_size, channels = dominant_geometry(shapes_by_split["train"])
        counts = {name: len(splits[name]) for name in SPLITS}
        source = ImageSource(root, class_names, image_size, channels, counts, folder_splits=splits)
    if not source.counts["train"]:
        raise ImageDataError(f"{root}: no training images")
    if not source.counts["test"]:
        raise ImageDataError(
            f"{root}: no test images (add a test/ folder or raise data.test_fraction)"
        )
    return source
