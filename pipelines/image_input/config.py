"""The image reading keys every pipeline that reads image folders shares (`data.*`)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from pipelines.core.config import DataConfig


@dataclasses.dataclass
class ImageReadConfig(DataConfig):
    """Where images are and how they are read and cached: what every pipeline that reads
    the image folders shares (`pipelines.image_input.dataset`)."""

    # Folder (relative to the data dir) of images (`train/`, `test/`, optional `val/`, one
    # subfolder per class; or class subfolders only) or of TFRecord shards with meta.json;
    # or an archive (.tar.gz, .tgz, .tar, .zip) of one, extracted once into `extract_dir`.
    path: str = "images"
    # Archive extraction cache; "" = $TFPIPE_CACHE_DIR/extracted, else
    # ~/.cache/tfpipelines/extracted. A folder per archive name, size and mtime.
    extract_dir: str = ""
    # Labels from file names instead of class folders: a regex whose one group is the class,
    # searched in each file name (folders read recursively), e.g. 'num(\d)'. "" = folders.
    label_pattern: str = ""
    # How val/test are carved from train: random (seeded, per class) | ordered (the last
    # test_fraction of the files by path is test, the val_fraction before that validation).
    carve: Literal["random", "ordered"] = "random"
    image_size: list[int] = dataclasses.field(default_factory=list)  # [h, w]; [] = most common
    channels: int = 0  # 1 grey, 3 colour, 0 = 1 if every training image is grey, else 3
    val_fraction: float = 0.1  # carved from train (per class) when there is no val/ folder
    test_fraction: float = 0.2  # carved from train when there is no test/ folder
    # Corrupt or unreadable files (or names without a label), reported by path.
    on_bad_image: Literal["fail", "skip"] = "fail"
    validate: bool = True  # decode every image once before training (folders only)
    cache: str = "auto"  # auto (memory if it fits in cache_max_mb) | memory | none | a path
    cache_max_mb: int = 4096
    shuffle_buffer: int = 0  # 0 = the whole training set (when cached), else 10,000
    max_train_images: int = 0  # 0 = all; for quick experiments
