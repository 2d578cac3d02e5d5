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
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipelines.core.textio import DataError, read_listed_files

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
SPLITS = ("train", "validation", "test")
CARVE_ORDERS = ("random", "ordered")
SPLIT_FOLDERS = {
    "train": ("train",),
    "validation": ("val", "valid", "validation"),
    "test": ("test",),
}
MAX_REPORTED = 20
# Leading bytes of the formats `decode_image` reads.
MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")


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


def decode_images(image_bytes: tf.Tensor, size: tuple[int, int], channels: int) -> tf.Tensor:
    """A request's encoded images `[N]` -> uint8 `[N, height, width, channels]`.

    Bytes that do not begin as a JPEG, PNG, GIF or BMP fail the request with an error that
    says so and gives their positions, instead of the decoder's own message.
    """
    known = tf.fill(tf.shape(image_bytes), False)
    for magic in MAGIC:
        known = known | tf.equal(tf.strings.substr(image_bytes, 0, len(magic)), magic)
    message = tf.strings.format(
        "image_bytes: element(s) {} are not JPEG, PNG, GIF or BMP images",
        tf.where(~known)[:, 0],
        summarize=20,
    )
    check = tf.debugging.Assert(tf.reduce_all(known), [message])
    with tf.control_dependencies([check]):
        image_bytes = tf.identity(image_bytes)

    @tf.autograph.experimental.do_not_convert
    def decode(data):
        return decode_image(data, size, channels)

    return tf.map_fn(
        decode,
        image_bytes,
        fn_output_signature=tf.TensorSpec((*size, channels), tf.uint8),
        parallel_iterations=16,
    )


def read_image_files(lines: list[str], base_dir: Path) -> np.ndarray:
    """The bytes of the image file each line names (relative to `base_dir`), for batch
    prediction; unreadable files and files that are not images fail naming them."""
    files = read_listed_files(lines, base_dir, "image")
    for path, content in files:
        if not content.startswith(MAGIC):
            raise ImageDataError(f"{path}: not a JPEG, PNG, GIF or BMP image")
    return np.array([content for _, content in files], dtype=object)


class ImageFileRequests:
    """Batch prediction of a task served image bytes: each input line is an image path
    (relative to the input file), read and checked to be an image. Mixed in before `Task`."""

    @classmethod
    def request_from_lines(cls, lines: Sequence[str], base_dir: Path) -> dict[str, Any]:
        return {"image_bytes": read_image_files(list(lines), base_dir)}


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


def list_named(
    folder: Path, pattern: re.Pattern, class_names: list[str] | None = None
) -> tuple[Split, list[str], list[tuple[str, str]]]:
    """Images anywhere under `folder`, labelled by `pattern`'s group in each file name.

    For sets that keep the label in the name (`000123-num7.png`) rather than in a class
    folder. Returns the split (sorted by path), the classes (sorted, or as given) and the
    files whose names have no label, with the reason, for `report_bad`.
    """
    files = sorted(
        str(p) for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )
    named, bad = [], []
    for path in files:
        match = pattern.search(Path(path).name)
        if match and match.group(1):
            named.append((path, match.group(1)))
        else:
            bad.append(
                (path, f"no label: the name does not match data.label_pattern '{pattern.pattern}'")
            )
    found = sorted({label for _, label in named})
    if class_names is None:
        class_names = found
    unknown = sorted(set(found) - set(class_names))
    if unknown:
        first = next(path for path, label in named if label in unknown)
        raise ImageDataError(
            f"{folder}: label(s) {', '.join(unknown)} (e.g. {first}) are not among the "
            f"training classes ({', '.join(class_names)})"
        )
    index = {name: i for i, name in enumerate(class_names)}
    labels = np.asarray([index[label] for _, label in named], dtype=np.int64)
    return Split([path for path, _ in named], labels), class_names, bad


def label_regex(pattern: str) -> re.Pattern:
    """`data.label_pattern` compiled, with exactly one group (the class name)."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ImageDataError(
            f"data.label_pattern '{pattern}' is not a valid regular expression: {exc}"
        ) from exc
    if regex.groups != 1:
        raise ImageDataError(
            f"data.label_pattern '{pattern}' must have exactly one group "
            f"(the class name), e.g. 'num(\\d)'; it has {regex.groups}"
        )
    return regex


def _carve_count(total: int, fraction: float) -> int:
    """At least one carved when asked for any, at least one left to train on."""
    take = int(round(total * fraction))
    if fraction > 0:
        take = max(take, 1)
    return max(min(take, total - 1), 0)


def carve(split: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    """Stratified, seeded split into (rest, carved) with `fraction` of each class carved."""
    rng = np.random.default_rng(seed)
    carved: list[int] = []
    for label in np.unique(split.labels):
        members = np.flatnonzero(split.labels == label)
        rng.shuffle(members)
        carved.extend(members[: _carve_count(len(members), fraction)].tolist())
    carved_set = set(carved)
    rest = np.array([i for i in range(len(split)) if i not in carved_set], dtype=np.int64)
    return split.subset(rest), split.subset(np.array(sorted(carved), dtype=np.int64))


def carve_last(split: Split, fraction: float) -> tuple[Split, Split]:
    """(rest, carved) with the last `fraction` of the files by path carved, across classes.

    Reproduces splits defined by file order (MNIST-10k: the last 2,000 images are test).
    """
    order = np.argsort(np.asarray(split.paths, dtype=object), kind="stable")
    cut = len(order) - _carve_count(len(order), fraction)
    return split.subset(order[:cut]), split.subset(order[cut:])


def scan_folder(
    root: Path,
    val_fraction: float,
    test_fraction: float,
    seed: int = 0,
    *,
    label_pattern: str = "",
    order: str = "random",
    on_bad_image: str = "fail",
) -> tuple[dict[str, Split], list[str]]:
    """Splits of an image folder: `train/`, `test/`, `val/` folders, else carved from train.

    Labels come from class subfolders, or with `label_pattern` from the file names (each
    folder searched recursively). `order` is how splits are carved: `random` (seeded, per
    class) or `ordered` (the last files by path).
    """
    root = Path(root)
    if not root.is_dir():
        raise ImageDataError(f"image folder {root} does not exist")
    if order not in CARVE_ORDERS:
        raise ImageDataError(f"data.carve must be one of {', '.join(CARVE_ORDERS)}, not '{order}'")
    folders = {
        split: next((root / n for n in names if (root / n).is_dir()), None)
        for split, names in SPLIT_FOLDERS.items()
    }
    train_dir = folders["train"] or root
    unlabelled: list[tuple[str, str]] = []
    regex = label_regex(label_pattern) if label_pattern else None

    def listing(folder: Path, class_names: list[str] | None = None):
        if regex is None:
            return list_images(folder, class_names)
        split, names, bad = list_named(folder, regex, class_names)
        unlabelled.extend(bad)
        return split, names

    train, class_names = listing(train_dir)
    listed = {
        name: listing(folders[name], class_names)[0]
        for name in ("test", "validation")
        if folders[name] is not None
    }
    report_bad(unlabelled, on_bad_image)
    if not class_names or not len(train):
        expected = (
            f"image files named to match data.label_pattern '{label_pattern}'"
            if regex
            else f"one subfolder per class holding {'/'.join(IMAGE_EXTENSIONS)} files"
        )
        raise ImageDataError(f"{train_dir}: no images found; expected {expected}")

    def cut(split: Split, fraction: float, carve_seed: int) -> tuple[Split, Split]:
        return (
            carve(split, fraction, carve_seed) if order == "random" else carve_last(split, fraction)
        )

    splits: dict[str, Split] = {}
    if "test" in listed:
        splits["test"] = listed["test"]
    else:
        train, splits["test"] = cut(train, test_fraction, seed)
    if "validation" in listed:
        splits["validation"] = listed["validation"]
    else:
        train, splits["validation"] = cut(train, val_fraction, seed + 1)
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
        image = tf.io.decode_image(
            tf.io.read_file(table[index]), channels=0, expand_animations=False
        )
        return index, tf.shape(image, out_type=tf.int64)

    ds = (
        tf.data.Dataset.range(len(paths))
        .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        .ignore_errors()
        .batch(4096)
    )
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
