"""An image set as the models read it: where the folder is (the bundled samples made, an
archive extracted), the geometry the model uses, and decoded, cached `tf.data` splits.

Shared by every pipeline that reads the image folders (`images`, `autoencoder`), so both
read, check, decode and cache images the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from pipelines.image_input import archives, samples
from pipelines.image_input.config import ImageReadConfig
from pipelines.image_input.reader import ImageDataError, decode_image
from pipelines.image_input.source import ImageSource, open_source


def image_root(cfg: ImageReadConfig, data_dir: Path) -> Path:
    """`cfg.path` under the data dir (the bundled samples are made if missing; an archive
    is extracted once into `cfg.extract_dir`)."""
    path = Path(cfg.path).expanduser()
    root = path if path.is_absolute() else Path(data_dir) / path
    if archives.is_archive(root):
        return archives.archive_root(root, cfg.extract_dir)
    if not root.exists() and samples.is_bundled(root):
        samples.write_samples(root)
    elif not root.exists() and (Path(data_dir) / "train").is_dir():
        root = Path(data_dir)  # `--data-dir` named the image folder itself
    return root


@dataclasses.dataclass
class ImageSet:
    """An opened `ImageSource` and the size and channels every image is decoded to."""

    source: ImageSource
    cfg: ImageReadConfig
    image_size: tuple[int, int]
    channels: int

    @classmethod
    def open(cls, cfg: ImageReadConfig, data_dir: Path, seed: int = 0) -> ImageSet:
        """Scan and check the images; the geometry from the config, else the most common."""
        source = open_source(image_root(cfg, data_dir), cfg, seed)
        if cfg.image_size and len(cfg.image_size) != 2:
            raise ImageDataError(f"data.image_size must be [height, width], got {cfg.image_size}")
        if cfg.channels not in (0, 1, 3):
            raise ImageDataError(f"data.channels must be 0 (auto), 1 or 3, got {cfg.channels}")
        size = tuple(cfg.image_size) if cfg.image_size else tuple(source.image_size)
        return cls(source, cfg, size, cfg.channels or source.channels)

    def describe(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.source.counts.items())
        return (
            f"{self.source.root}: {len(self.source.class_names)} classes, {counts}; "
            f"{self.image_size[0]}x{self.image_size[1]}x{self.channels}"
        )

    def decoded(
        self, split: str, parallel: bool = True, classes: Sequence[int] | None = None
    ) -> tf.data.Dataset:
        """`(uint8 image, int32 label)` of `split`, decoded in parallel; with `classes`, only
        those class ids' images are decoded (see `ImageSource.encoded`)."""
        size, channels = self.image_size, self.channels

        @tf.autograph.experimental.do_not_convert  # plain graph code: nothing to convert
        def decode(data, label):
            return decode_image(data, size, channels), tf.cast(label, tf.int32)

        ds = self.source.encoded(split, parallel, classes).map(
            decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not parallel or None
        )
        if self.drops_bad_files():
            ds = ds.ignore_errors(log_warning=True)  # unchecked files: drop what fails
        return ds

    def drops_bad_files(self) -> bool:
        """Unchecked files are skipped as they fail, so split sizes are not known ahead."""
        return not self.cfg.validate and self.cfg.on_bad_image == "skip"

    def cached(
        self, ds: tf.data.Dataset, split: str, count: int | None = None
    ) -> tuple[tf.data.Dataset, bool]:
        """`ds` cached as `data.cache` says (in memory when `count` images fit in
        `data.cache_max_mb`); returns whether it is cached."""
        mode = self.cfg.cache
        height, width = self.image_size
        count = self.source.counts[split] if count is None else count
        megabytes = count * height * width * self.channels / 2**20
        if mode == "none" or (mode == "auto" and megabytes > self.cfg.cache_max_mb):
            return ds, False
        if mode in ("auto", "memory"):
            return ds.cache(), True
        Path(mode).mkdir(parents=True, exist_ok=True)
        return ds.cache(str(Path(mode) / f"{split}-{height}x{width}x{self.channels}")), True

    def images_at(self, split: str, indices: Sequence[int]) -> np.ndarray:
        """Decoded images of `split` at `indices` (in the order given)."""
        wanted = {int(i): n for n, i in enumerate(indices)}
        out = np.zeros((len(wanted), *self.image_size, self.channels), dtype=np.uint8)
        if not wanted:
            return out
        last = max(wanted)
        for index, (image, _) in enumerate(
            self.decoded(split, parallel=False).take(last + 1).as_numpy_iterator()
        ):
            if index in wanted:
                out[wanted[index]] = image
        return out

    def encoded_bytes(self, split: str, count: int | None = None) -> list[bytes]:
        """The encoded files of `split`, in order (the first `count`)."""
        ds = self.source.encoded(split, parallel=False)
        if count is not None:
            ds = ds.take(count)
        return [bytes(data) for data, _ in ds.as_numpy_iterator()]
