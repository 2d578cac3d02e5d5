"""Sharded TFRecord files for large image sets (`tfpipe data images-to-tfrecord SRC DST`).

The encoded bytes are stored as they are (no re-encoding, no quality loss), with the class
index and the source path, in `SPLIT-00000-of-00004.tfrecord` shards of about
`shard_mb` megabytes, next to a `meta.json` with the class names, counts and geometry.
Images are checked while converting, so a TFRecord set never holds a corrupt file.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from pipelines.image_input.reader import (
    SPLITS,
    ImageDataError,
    Split,
    dominant_geometry,
    inspect_images,
    report_bad,
    scan_folder,
)

META_FILE = "meta.json"
FORMAT = "tfpipelines-images-v1"
FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/label": tf.io.FixedLenFeature([], tf.int64),
    "image/path": tf.io.FixedLenFeature([], tf.string, default_value=""),
}


def is_tfrecord_dir(path: Path) -> bool:
    return (Path(path) / META_FILE).is_file()


def _example(data: bytes, label: int, path: str) -> bytes:
    feature = {
        "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
        "image/label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        "image/path": tf.train.Feature(bytes_list=tf.train.BytesList(value=[path.encode()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_split(split: Split, dst: Path, name: str, shard_mb: float, root: Path) -> list[str]:
    """Write one split's images into shards; returns the shard file names."""
    sizes = [Path(p).stat().st_size for p in split.paths]
    shards = max(1, math.ceil(sum(sizes) / (shard_mb * 2**20)))
    files = [f"{name}-{i:05d}-of-{shards:05d}.tfrecord" for i in range(shards)]
    # Round-robin over a seeded permutation: every shard holds every class.
    order = np.random.default_rng(0).permutation(len(split))
    writers = [tf.io.TFRecordWriter(str(dst / f)) for f in files]
    try:
        for position, index in enumerate(order):
            path = Path(split.paths[index])
            relative = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
            writers[position % shards].write(
                _example(path.read_bytes(), int(split.labels[index]), relative)
            )
    finally:
        for writer in writers:
            writer.close()
    return files


def convert(
    src: Path,
    dst: Path,
    shard_mb: float = 100.0,
    on_bad_image: str = "fail",
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> dict[str, Any]:
    """Image folder -> TFRecord shards and meta.json in `dst`. Returns the meta."""
    src, dst = Path(src), Path(dst)
    splits, class_names = scan_folder(src, val_fraction, test_fraction, seed)
    all_paths = [p for name in SPLITS for p in splits[name].paths]
    shapes, bad = inspect_images(all_paths)
    report_bad(bad, on_bad_image)
    bad_paths = {p for p, _ in bad}
    start, train_shapes = 0, None
    for name in SPLITS:
        split = splits[name]
        keep = np.array([i for i, p in enumerate(split.paths) if p not in bad_paths], dtype=int)
        if name == "train":
            train_shapes = shapes[start : start + len(split)][keep]
        start += len(split)
        splits[name] = split.subset(keep)
    (height, width), channels = dominant_geometry(train_shapes)
    dst.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "classes": class_names,
        "image_size": [height, width],
        "channels": channels,
        "source": str(src),
        "splits": {},
    }
    for name in SPLITS:
        files = write_split(splits[name], dst, name, shard_mb, src) if len(splits[name]) else []
        meta["splits"][name] = {"count": len(splits[name]), "files": files}
    (dst / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return meta


def read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads((Path(path) / META_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ImageDataError(
            f"{Path(path) / META_FILE}: cannot read TFRecord metadata: {exc}"
        ) from exc
    if meta.get("format") != FORMAT:
        raise ImageDataError(f"{Path(path) / META_FILE}: not a {FORMAT} TFRecord set")
    for name in SPLITS:
        for file in meta["splits"].get(name, {}).get("files", []):
            if not (Path(path) / file).is_file():
                raise ImageDataError(
                    f"{Path(path) / file}: TFRecord shard listed in {META_FILE} is missing"
                )
    return meta


def encoded_dataset(files: list[Path], parallel: bool = True) -> tf.data.Dataset:
    """`(encoded bytes, label)` records of the given shards, in file order."""
    ds = tf.data.TFRecordDataset(
        [str(f) for f in files], num_parallel_reads=tf.data.AUTOTUNE if parallel else None
    )

    def parse(record):
        example = tf.io.parse_single_example(record, FEATURES)
        return example["image/encoded"], example["image/label"]

    return ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE)


def main(args: argparse.Namespace) -> int:
    """`tfpipe data images-to-tfrecord SRC DST`."""
    meta = convert(
        Path(args.src),
        Path(args.dst),
        shard_mb=args.shard_mb,
        on_bad_image=args.on_bad_image,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
    )
    for name, info in meta["splits"].items():
        print(f"{name}: {info['count']} images in {len(info['files'])} shard(s)")
    print(
        f"{len(meta['classes'])} classes, {meta['image_size'][0]}x{meta['image_size'][1]}x"
        f"{meta['channels']}; wrote {Path(args.dst) / META_FILE}"
    )
    return 0
