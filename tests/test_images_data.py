"""Image reading: decoding (grey/colour, sizes), folder scanning, bad files, TFRecords."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pipelines.image_input import tfrecord
from pipelines.image_input.augment import RandomPadCrop
from pipelines.image_input.reader import ImageDataError, Split, carve, decode_image, scan_folder
from pipelines.image_input.samples import CLASSES, draw_shape
from pipelines.image_input.source import open_source
from pipelines.images.config import ImagesDataConfig
from pipelines.images.task import ImagesTask


def encode(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    mode = "L" if array.ndim == 2 else ("RGBA" if array.shape[-1] == 4 else "RGB")
    Image.fromarray(array, mode).save(buffer, format=fmt)
    return buffer.getvalue()


def make_folder(root: Path, per_class: int = 4, classes=CLASSES[:3]) -> Path:
    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        for kind in classes:
            (root / split / kind).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                image = draw_shape(kind, rng, 24)
                suffix = "png" if i % 2 else "jpg"
                image.save(root / split / kind / f"{i}.{suffix}")
    return root


# -- decoding ------------------------------------------------------------------------------
def test_grey_png_becomes_three_equal_channels():
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    out = decode_image(tf.constant(encode(grey, "PNG")), (8, 8), 3).numpy()
    assert out.shape == (8, 8, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)


def test_colour_becomes_grey_by_luminance_and_alpha_is_dropped():
    rgba = np.zeros((6, 6, 4), dtype=np.uint8)
    rgba[..., 1] = 200  # pure green, opaque
    rgba[..., 3] = 255
    out = decode_image(tf.constant(encode(rgba, "PNG")), (6, 6), 1).numpy()
    assert out.shape == (6, 6, 1)
    assert np.all(np.abs(out.astype(int) - round(0.587 * 200)) <= 1)
    rgb = decode_image(tf.constant(encode(rgba, "PNG")), (6, 6), 3).numpy()
    np.testing.assert_array_equal(rgb[..., 1], 200)


def test_any_size_is_resized_to_the_model_size():
    big = np.full((50, 70, 3), 90, dtype=np.uint8)
    out = decode_image(tf.constant(encode(big, "JPEG")), (32, 32), 3).numpy()
    assert out.shape == (32, 32, 3)
    assert np.all(np.abs(out.astype(int) - 90) <= 3)


# -- folders and splits --------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(
    counts=st.lists(st.integers(1, 30), min_size=1, max_size=5),
    fraction=st.floats(0.0, 0.9),
    seed=st.integers(0, 100),
)
def test_carve_is_stratified_disjoint_and_complete(counts, fraction, seed):
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    split = Split([f"f{i}" for i in range(len(labels))], labels)
    rest, carved = carve(split, fraction, seed)
    assert sorted(rest.paths + carved.paths) == sorted(split.paths)
    assert not set(rest.paths) & set(carved.paths)
    for c, n in enumerate(counts):
        assert np.sum(rest.labels == c) >= 1  # no class loses all its training images
        if fraction > 0 and n > 1:
            assert np.sum(carved.labels == c) >= 1
    again, _ = carve(split, fraction, seed)
    assert again.paths == rest.paths


def test_scan_folder_uses_split_folders_and_carves_validation(tmp_path):
    root = make_folder(tmp_path / "imgs", per_class=5)
    splits, classes = scan_folder(root, val_fraction=0.2, test_fraction=0.5)
    assert classes == sorted(CLASSES[:3])
    assert len(splits["test"]) == 15  # the test/ folder, not carved
    assert len(splits["validation"]) == 3 and len(splits["train"]) == 12
    assert {Path(p).parent.name for p in splits["validation"].paths} == set(classes)


def test_test_class_unknown_to_train_is_an_error_naming_the_folder(tmp_path):
    root = make_folder(tmp_path / "imgs")
    (root / "test" / "zebra").mkdir()
    with pytest.raises(ImageDataError, match=r"test: class folder\(s\) zebra"):
        scan_folder(root, 0.1, 0.2)


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty" / "train" / "a").mkdir(parents=True)
    with pytest.raises(ImageDataError, match="no images found"):
        scan_folder(tmp_path / "empty", 0.1, 0.2)


# -- bad files -----------------------------------------------------------------------------
@pytest.fixture
def folder_with_bad_files(tmp_path):
    root = make_folder(tmp_path / "imgs")
    bad = {
        root / "train" / "circle" / "garbage.jpg": b"this is not an image at all",
        root / "train" / "cross" / "empty.png": b"",
        root / "test" / "square" / "truncated.png": (
            root / "test" / "square" / "1.png"
        ).read_bytes()[:40],
    }
    for path, content in bad.items():
        path.write_bytes(content)
    return root, bad


def test_bad_images_fail_the_run_naming_every_file(folder_with_bad_files):
    root, bad = folder_with_bad_files
    with pytest.raises(ImageDataError) as info:
        open_source(root, ImagesDataConfig(on_bad_image="fail"))
    message = str(info.value)
    for path in bad:
        assert str(path) in message
    assert "empty file" in message
    assert "on_bad_image=skip" in message


def test_bad_images_are_skipped_when_configured(folder_with_bad_files, capsys):
    root, bad = folder_with_bad_files
    source = open_source(root, ImagesDataConfig(on_bad_image="skip", val_fraction=0.0))
    assert source.counts == {"train": 12, "validation": 0, "test": 12}
    kept = set(source.folder_splits["train"].paths) | set(source.folder_splits["test"].paths)
    assert not {str(p) for p in bad} & kept
    assert "garbage.jpg" in capsys.readouterr().out
    decoded = list(source.encoded("train").map(lambda d, y: tf.io.decode_image(d)))
    assert len(decoded) == 12  # every remaining file decodes


def test_cli_run_on_bad_images_exits_with_the_path(folder_with_bad_files, tmp_path):
    from helpers import tfpipe

    root, _ = folder_with_bad_files
    proc = tfpipe(
        "run",
        "images",
        "--data-dir",
        str(root.parent),
        "--workdir",
        str(tmp_path / "w"),
        "--set",
        "data.path=imgs",
        "--set",
        "model.name=lenet",
    )
    assert proc.returncode == 2
    assert "garbage.jpg" in proc.stderr and "Traceback" not in proc.stderr


# -- TFRecords -----------------------------------------------------------------------------
def test_tfrecord_round_trip_keeps_bytes_labels_and_geometry(tmp_path):
    root = make_folder(tmp_path / "imgs", per_class=6)
    meta = tfrecord.convert(root, tmp_path / "records", shard_mb=0.004, val_fraction=0.2)
    assert meta["classes"] == sorted(CLASSES[:3])
    assert meta["image_size"] == [24, 24] and meta["channels"] == 3
    assert len(meta["splits"]["train"]["files"]) > 1  # really sharded
    folder = open_source(root, ImagesDataConfig(val_fraction=0.2))
    records = open_source(tmp_path / "records", ImagesDataConfig())
    assert records.class_names == folder.class_names
    assert records.counts == folder.counts
    for split in ("train", "validation", "test"):
        expected = sorted(
            (Path(p).read_bytes(), int(y))
            for p, y in zip(
                folder.folder_splits[split].paths, folder.folder_splits[split].labels, strict=True
            )
        )
        got = sorted((bytes(d), int(y)) for d, y in records.encoded(split).as_numpy_iterator())
        assert got == expected
        # Some classes only (the autoencoder's normal ones): the same images, the rest left out.
        for source in (folder, records):
            some = sorted(
                (bytes(d), int(y))
                for d, y in source.encoded(split, classes=[0, 2]).as_numpy_iterator()
            )
            assert some == [(d, y) for d, y in expected if y in (0, 2)] and some
        assert not list(folder.encoded(split, classes=[]).as_numpy_iterator())


def test_task_trains_from_tfrecords_with_the_same_batches_shape(tmp_path):
    root = make_folder(tmp_path / "imgs", per_class=6)
    tfrecord.convert(root, tmp_path / "data" / "records", shard_mb=0.004)
    task = ImagesTask(ImagesTask.config_class(), tmp_path / "data")
    task.config.data.path = "records"
    task.prepare(tmp_path / "state")
    train, val = task.datasets(4)
    images, labels = next(iter(train))
    assert images.shape == (4, 24, 24, 3) and images.dtype == tf.float32
    assert int(train.cardinality()) == task.source.counts["train"] // 4
    assert val is not None
    assert 0 < np.mean(task.std) and len(task.mean) == 3


def test_corrupt_records_meta_is_reported(tmp_path):
    root = make_folder(tmp_path / "imgs")
    tfrecord.convert(root, tmp_path / "records")
    shard = next((tmp_path / "records").glob("train-*.tfrecord"))
    shard.unlink()
    with pytest.raises(ImageDataError, match=shard.name):
        open_source(tmp_path / "records", ImagesDataConfig())


# -- augmentation layer --------------------------------------------------------------------
def test_random_pad_crop_translates_in_training_only():
    images = np.random.default_rng(0).uniform(1, 2, size=(6, 10, 12, 3)).astype("float32")
    layer = RandomPadCrop(3, seed=1)
    np.testing.assert_array_equal(layer(images, training=False), images)
    out = layer(images, training=True).numpy()
    assert out.shape == images.shape
    padded = np.pad(images, [(0, 0), (3, 3), (3, 3), (0, 0)])
    moved = 0
    for i in range(len(images)):
        matches = [
            (dy, dx)
            for dy in range(7)
            for dx in range(7)
            if np.array_equal(out[i], padded[i, dy : dy + 10, dx : dx + 12])
        ]
        assert matches, "each output must be a crop of the padded image"
        moved += matches[0] != (3, 3)
    assert moved > 0


def test_request_from_lines_reads_bytes_and_names_bad_files(tmp_path):
    root = make_folder(tmp_path / "imgs")
    good = root / "test" / "circle" / "1.png"
    (tmp_path / "notes.txt").write_text("hello")
    request = ImagesTask.request_from_lines([str(good.relative_to(tmp_path))], tmp_path)
    assert request["image_bytes"][0] == good.read_bytes()
    with pytest.raises(ValueError, match="notes.txt: not a JPEG, PNG"):
        ImagesTask.request_from_lines(["notes.txt"], tmp_path)
    with pytest.raises(ValueError, match="missing.png: cannot read image"):
        ImagesTask.request_from_lines(["missing.png"], tmp_path)
    shutil.rmtree(root)


def test_unchecked_bad_files_are_dropped_in_the_pipeline_when_skipping(
    folder_with_bad_files, tmp_path
):
    root, _ = folder_with_bad_files
    task = ImagesTask(ImagesTask.config_class(), root.parent)
    task.config.data.path = root.name
    task.config.data.validate = False
    task.config.data.on_bad_image = "skip"
    task.config.data.val_fraction = 0.0
    task.prepare(tmp_path / "state")
    assert task.source.counts["train"] == 14  # unchecked: the two bad files still listed
    train, _ = task.datasets(1)
    assert sum(1 for _ in train) == 12  # ...but dropped when they fail to decode


def test_cli_images_to_tfrecord(tmp_path):
    from helpers import tfpipe

    root = make_folder(tmp_path / "imgs", per_class=3)
    proc = tfpipe(
        "data", "images-to-tfrecord", str(root), str(tmp_path / "records"), "--val-fraction", "0.34"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train: 6 images in 1 shard(s)" in proc.stdout
    assert "validation: 3 images" in proc.stdout and "test: 9 images" in proc.stdout
    assert tfrecord.read_meta(tmp_path / "records")["channels"] == 3
