"""Reading labelled images: a folder per class, checked before training, decoded in the graph.

Every image goes through `decode_image` (training, evaluation and the exported serving
function alike), so what the model sees in training is what it sees in production: any
size, grey or colour, JPEG/PNG/BMP/GIF in; a uint8 tensor of the model's size and
channels out. Files that cannot be decoded are found before training, by path, and either
fail the run or are left out (`data.on_bad_image`), never a crash deep inside `fit`.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
from pathlib import Path

import numpy as np
import tensorflow as tf

from pipelines.core.textio import DataError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
SPLITS = ("train", "validation", "test")
SPLIT_FOLDERS = {"train": ("train",), "validation": ("val", "valid", "validation"),
                 "test": ("test",)}
MAX_REPORTED = 20


class ImageDataError(DataError):
    """Images that cannot be used, named by path (the CLI prints it without a traceback)."""


# -- decoding (graph code shared by tf.data and the serving function) ---------------------
def to_channels(image: tf.Tensor, channels: int) -> tf.Tensor:
    """Grey, grey+alpha, RGB or RGBA uint8 image -> `channels` (1 or 3) channels."""
    have = tf.shape(image)[-1]

    def from_grey():
        grey = image[..., :1]
        return grey if channels == 1 else tf.tile(grey, [1, 1, 3])

    def from_colour():
        rgb = image[..., :3]
        return tf.image.rgb_to_grayscale(rgb) if channels == 1 else rgb

    return tf.cond(have < 3, from_grey, from_colour)


def decode_image(data: tf.Tensor, size: tuple[int, int], channels: int) -> tf.Tensor:
    """Encoded bytes -> uint8 [height, width, channels]; resized (antialiased) if needed."""
    image = tf.io.decode_image(data, channels=0, dtype=tf.uint8, expand_animations=False)
    image = to_channels(image, channels)
    height, width = size

    def resize():
        resized = tf.image.resize(image, (height, width), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)

    shape = tf.shape(image)
    same = tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width))
    image = tf.cond(same, lambda: image, resize)
    image.set_shape((height, width, channels))
    return image


# -- folders ------------------------------------------------------------------------------
@dataclasses.dataclass
class Split:
    """Image files of one split and their class indices."""

    paths: list[str]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, index: np.ndarray) -> Split:
        return Split([self.paths[i] for i in index], self.labels[index])


def list_images(folder: Path, class_names: list[str] | None = None) -> tuple[Split, list[str]]:
    """Images under `folder/CLASS/`, classes sorted by name (or as given)."""
    found = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if class_names is None:
        class_names = found
    unknown = sorted(set(found) - set(class_names))
    if unknown:
        raise ImageDataError(
            f"{folder}: class folder(s) {', '.join(unknown)} are not among the training "
            f"classes ({', '.join(class_names)})"
        )
    paths, labels = [], []
    for index, name in enumerate(class_names):
        class_dir = folder / name
        if not class_dir.is_dir():
            continue
        for path in sorted(class_dir.rglob("*")):
            if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file():
                paths.append(str(path))
                labels.append(index)
    return Split(paths, np.asarray(labels, dtype=np.int64)), class_names


def carve(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Stratified, seeded split into (rest, carved) with `fraction` of each class carved."""
    rng = np.random.default_rng(seed)
    carved: list[int] = []
    for label in np.unique(split.labels):
        members = np.flatnonzero(split.labels == label)
        rng.shuffle(members)
        # At least one image of each class carved, at least one left to train on.
        take = int(round(len(members) * fraction))
        if fraction > 0:
            take = max(take, 1)
        take = min(take, len(members) - 1)
        carved.extend(members[:take].tolist())
    carved_set = set(carved)
    rest = np.array([i for i in range(len(split)) if i not in carved_set], dtype=np.int64)
    return split.subset(rest), split.subset(np.array(sorted(carved), dtype=np.int64))


def scan_folder(
    root: Path, val_fraction: float, test_fraction: float, seed: int = 0
) -> tuple[dict[str, Split], list[str]]:
    """Splits of an image folder: `train/`, `test/`, `val/` folders, else carved from train."""
    root = Path(root)
    if not root.is_dir():
        raise ImageDataError(f"image folder {root} does not exist")
    folders = {split: next((root / n for n in names if (root / n).is_dir()), None)
               for split, names in SPLIT_FOLDERS.items()}
    train_dir = folders["train"] or root
    train, class_names = list_images(train_dir)
    if not class_names or not len(train):
        raise ImageDataError(
            f"{train_dir}: no images found; expected one subfolder per class holding "
            f"{'/'.join(IMAGE_EXTENSIONS)} files"
        )
    splits: dict[str, Split] = {}
    if folders["test"] is not None:
        splits["test"], _ = list_images(folders["test"], class_names)
    else:
        train, splits["test"] = carve(train, test_fraction, seed)
    if folders["validation"] is not None:
        splits["validation"], _ = list_images(folders["validation"], class_names)
    else:
        train, splits["validation"] = carve(train, val_fraction, seed + 1)
    splits["train"] = train
    return splits, class_names


# -- checking ------------------------------------------------------------------------------
def inspect_images(paths: list[str]) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Decode every file once (in parallel, with TF's own decoders).

    Returns the [n, 3] decoded shapes (zeros for bad files) and the bad files with reasons.
    """
    shapes = np.zeros((len(paths), 3), dtype=np.int64)
    if not paths:
        return shapes, []
    table = tf.constant(paths)

    def load(index):
        image = tf.io.decode_image(tf.io.read_file(table[index]), channels=0,
                                   expand_animations=False)
        return index, tf.shape(image, out_type=tf.int64)

    ds = (tf.data.Dataset.range(len(paths))
          .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
          .ignore_errors()
          .batch(4096))
    ok = np.zeros(len(paths), dtype=bool)
    for index, shape in ds.as_numpy_iterator():
        ok[index] = True
        shapes[index] = shape
    bad = [(paths[i], _decode_error(paths[i])) for i in np.flatnonzero(~ok)]
    return shapes, bad


def _decode_error(path: str) -> str:
    """Why TF cannot use this file (re-run eagerly, for the message)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if not data:
        return "empty file"
    try:
        tf.io.decode_image(data, channels=0, expand_animations=False)
    except (tf.errors.OpError, ValueError) as exc:
        message = getattr(exc, "message", str(exc)).strip().splitlines()[0]
        return f"not a decodable image ({message})"
    return "could not be decoded"


def report_bad(bad: list[tuple[str, str]], on_bad_image: str) -> None:
    """Fail naming the files, or warn and go on without them."""
    if not bad:
        return
    if on_bad_image not in ("fail", "skip"):
        raise ImageDataError(f"data.on_bad_image must be 'fail' or 'skip', not '{on_bad_image}'")
    lines = [f"  {path}: {reason}" for path, reason in bad[:MAX_REPORTED]]
    if len(bad) > MAX_REPORTED:
        lines.append(f"  ... and {len(bad) - MAX_REPORTED} more")
    text = f"{len(bad)} image file(s) cannot be used:\n" + "\n".join(lines)
    if on_bad_image == "fail":
        raise ImageDataError(text + "\n(set data.on_bad_image=skip to leave them out)")
    log.warning("skipping %s", text)
    print(f"warning: skipping {text}", flush=True)


def dominant_geometry(shapes: np.ndarray) -> tuple[tuple[int, int], int]:
    """The most common (height, width), and 1 channel if every image is grey, else 3."""
    valid = shapes[shapes[:, 0] > 0]
    if not len(valid):
        raise ImageDataError("no decodable images to take the image size from")
    (height, width), _ = collections.Counter(map(tuple, valid[:, :2].tolist())).most_common(1)[0]
    channels = 1 if np.all(valid[:, 2] <= 2) else 3
    return (int(height), int(width)), channels
