"""Image sets from archives: extraction cache, safety, labels in file names, ordered carving."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.image_input import archives
from pipelines.image_input.reader import ImageDataError, scan_folder
from pipelines.image_input.source import open_source
from pipelines.images.config import ImagesDataConfig
from pipelines.images.task import ImagesTask

CLASSES = ("cat", "dog")


def image_bytes(value: int, fmt: str = "PNG") -> bytes:
    pixels = np.random.default_rng(value).integers(0, 255, size=(8, 8, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def class_tree(per_class: int = 3) -> dict[str, bytes]:
    """`set/{train,test}/{class}/i.{png,jpg}`: member name -> content."""
    return {
        f"set/{split}/{kind}/{i}.{'png' if i % 2 else 'jpg'}": image_bytes(
            i, "PNG" if i % 2 else "JPEG"
        )
        for split in ("train", "test")
        for kind in CLASSES
        for i in range(per_class)
    }


def named_flat(count: int) -> dict[str, bytes]:
    """`digits/images/NNNNNN-numD.png`, the label in the name (as MNIST-10k)."""
    return {f"digits/images/{i:06d}-num{i % 3}.png": image_bytes(i) for i in range(count)}


def write_archive(
    path: Path, members: dict[str, bytes], links: dict[str, str] | None = None
) -> Path:
    """A .tar.gz/.tgz/.tar or .zip of `members` (and symlinks `links`, tar only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as zipped:
            for name, data in members.items():
                zipped.writestr(name, data)
        return path
    with tarfile.open(path, "w:gz" if path.name.endswith(("gz", "tgz")) else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


@pytest.fixture(params=["tar-binary", "tarfile"])
def tar_tool(request, monkeypatch):
    """Both tar paths: the `tar` program and Python's tarfile (no `tar` on PATH)."""
    if request.param == "tarfile":
        monkeypatch.setattr(archives.shutil, "which", lambda name: None)
    elif not shutil.which("tar"):
        pytest.skip("no tar program")
    return request.param


# -- extraction and the cache --------------------------------------------------------------
@pytest.mark.parametrize("name", ["set.tar.gz", "set.tgz", "set.tar", "set.zip"])
def test_archive_is_extracted_and_its_lone_top_folder_is_the_root(tmp_path, name, capsys):
    archive = write_archive(tmp_path / "data" / name, class_tree())
    task = ImagesTask(ImagesTask.config_class(), tmp_path / "data")
    task.config.data.path = name
    task.config.data.extract_dir = str(tmp_path / "cache")
    root = task.image_root()
    assert root.name == "set" and root.parent.parent == tmp_path / "cache"
    assert f"extracting {archive.name}" in capsys.readouterr().out
    source = open_source(root, ImagesDataConfig(val_fraction=0.0))
    assert source.class_names == list(CLASSES)
    assert source.counts == {"train": 6, "validation": 0, "test": 6}


def test_second_open_reuses_the_cache_and_a_changed_archive_is_extracted_again(
    tmp_path, tar_tool, capsys
):
    archive = write_archive(tmp_path / "set.tar.gz", class_tree())
    cache = str(tmp_path / "cache")
    root = archives.archive_root(archive, cache)
    marker = root / "marker"
    marker.write_text("still here")
    capsys.readouterr()
    assert archives.archive_root(archive, cache) == root
    assert marker.exists() and "extracting" not in capsys.readouterr().out

    write_archive(archive, class_tree(per_class=4))  # new content, new size
    again = archives.archive_root(archive, cache)
    assert again != root and not (again / "marker").exists()
    assert "extracting" in capsys.readouterr().out
    assert len(list((again / "train" / "cat").iterdir())) == 4
    assert not list(Path(cache).glob(".*"))  # no temporary folders left


def test_cache_defaults_to_the_tfpipe_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TFPIPE_CACHE_DIR", str(tmp_path / "c"))
    assert archives.cache_root("") == tmp_path / "c" / "extracted"
    assert archives.cache_root(str(tmp_path / "x")) == tmp_path / "x"
    monkeypatch.delenv("TFPIPE_CACHE_DIR")
    assert archives.cache_root("") == Path.home() / ".cache" / "tfpipelines" / "extracted"


def test_a_failed_extraction_leaves_nothing_behind(tmp_path, monkeypatch):
    archive = write_archive(tmp_path / "set.tar", class_tree())

    def crash(archive, dest):
        (dest / "half.png").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(archives, "_untar_binary", crash)
    monkeypatch.setattr(archives, "_untar_python", crash)
    with pytest.raises(KeyboardInterrupt):
        archives.archive_root(archive, str(tmp_path / "cache"))
    assert not list((tmp_path / "cache").iterdir())


def test_the_loser_of_a_concurrent_extraction_uses_the_winners_folder(tmp_path, monkeypatch):
    archive = write_archive(tmp_path / "set.tar", class_tree())
    extract = archives._untar_python

    def other_run_finishes_first(archive, dest):
        extract(archive, dest)
        stat = archive.stat()
        winner = dest.parent / f"set-{stat.st_size}-{stat.st_mtime_ns}"
        shutil.copytree(dest, winner)
        (winner / "winner").write_text("")

    monkeypatch.setattr(archives.shutil, "which", lambda name: None)
    monkeypatch.setattr(archives, "_untar_python", other_run_finishes_first)
    root = archives.archive_root(archive, str(tmp_path / "cache"))
    assert (root.parent / "winner").exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [root.parent.name]


def test_members_escaping_the_folder_are_refused(tmp_path, tar_tool):
    cache = tmp_path / "deep" / "cache"
    members = {"set/train/cat/0.png": image_bytes(0), "../evil.png": image_bytes(1)}
    archive = write_archive(tmp_path / "bad.tar.gz", members)
    with pytest.raises(ImageDataError, match=r"bad.tar.gz: member '\.\./evil.png'"):
        archives.archive_root(archive, str(cache))
    link = write_archive(
        tmp_path / "link.tar", {"set/a.png": image_bytes(0)}, links={"set/b.png": "/etc/passwd"}
    )
    with pytest.raises(ImageDataError, match="link.tar: member 'set/b.png'"):
        archives.archive_root(link, str(cache))
    assert not (tmp_path / "deep" / "evil.png").exists()
    assert not list(cache.iterdir())


def test_zip_members_escaping_the_folder_are_refused(tmp_path):
    archive = write_archive(
        tmp_path / "bad.zip", {"ok.png": image_bytes(0), "../../evil.png": image_bytes(1)}
    )
    with pytest.raises(ImageDataError, match=r"bad.zip: member '\.\./\.\./evil.png'"):
        archives.archive_root(archive, str(tmp_path / "cache"))
    assert not list((tmp_path / "cache").iterdir())


def test_missing_archive_is_named(tmp_path):
    with pytest.raises(ImageDataError, match="nothing.tar.gz does not exist"):
        archives.archive_root(tmp_path / "nothing.tar.gz", str(tmp_path / "cache"))


# -- labels in file names ------------------------------------------------------------------
def test_labels_are_read_from_file_names(tmp_path):
    archive = write_archive(tmp_path / "digits.tar.gz", named_flat(12))
    root = archives.archive_root(archive, str(tmp_path / "cache"))
    assert root.name == "images"  # through two lone folders
    cfg = ImagesDataConfig(label_pattern=r"num(\d)", val_fraction=0.0, test_fraction=0.25)
    source = open_source(root, cfg)
    assert source.class_names == ["0", "1", "2"]
    assert source.counts == {"train": 9, "validation": 0, "test": 3}
    for split in source.folder_splits.values():
        for path, label in zip(split.paths, split.labels, strict=True):
            assert Path(path).stem.endswith(f"num{label}")


def test_a_name_without_a_label_fails_naming_the_file_or_is_skipped(tmp_path, capsys):
    root = tmp_path / "flat"
    root.mkdir()
    for name, data in named_flat(6).items():
        (root / Path(name).name).write_bytes(data)
    (root / "stray.png").write_bytes(image_bytes(9))
    with pytest.raises(ImageDataError, match=r"stray.png: no label.*num\(\\d\)"):
        scan_folder(root, 0.0, 0.5, label_pattern=r"num(\d)")
    splits, classes = scan_folder(root, 0.0, 0.5, label_pattern=r"num(\d)", on_bad_image="skip")
    assert sum(len(s) for s in splits.values()) == 6 and classes == ["0", "1", "2"]
    assert "skipping 1 image file(s)" in capsys.readouterr().out


def test_a_label_pattern_needs_one_group(tmp_path):
    with pytest.raises(ImageDataError, match="exactly one group"):
        scan_folder(tmp_path, 0.0, 0.5, label_pattern=r"num\d")


# -- ordered carving -----------------------------------------------------------------------
def test_ordered_carving_puts_exactly_the_last_files_in_test(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    files = named_flat(20)
    for name in reversed(files):  # creation order must not matter
        (root / Path(name).name).write_bytes(files[name])
    names = sorted(Path(n).name for n in files)
    splits, _ = scan_folder(root, 0.25, 0.2, label_pattern=r"num(\d)", order="ordered")
    assert [Path(p).name for p in splits["test"].paths] == names[16:]
    assert [Path(p).name for p in splits["validation"].paths] == names[12:16]
    assert [Path(p).name for p in splits["train"].paths] == names[:12]


def test_ordered_carving_of_class_folders_is_across_classes(tmp_path):
    root = tmp_path / "classes"
    for kind in CLASSES:
        (root / kind).mkdir(parents=True)
        for i in range(4):
            (root / kind / f"{i}.png").write_bytes(image_bytes(i))
    splits, _ = scan_folder(root, 0.0, 0.5, order="ordered")
    assert {Path(p).parent.name for p in splits["test"].paths} == {"dog"}
    with pytest.raises(ImageDataError, match="data.carve must be one of random, ordered"):
        scan_folder(root, 0.0, 0.5, order="sorted")


def test_old_temporary_folders_are_swept(tmp_path):
    archive = write_archive(tmp_path / "set.tar", class_tree(per_class=1))
    stat = archive.stat()
    stale = tmp_path / "cache" / f".set-{stat.st_size}-{stat.st_mtime_ns}.dead.tmp"
    stale.mkdir(parents=True)
    os.utime(stale, (0, 0))
    archives.archive_root(archive, str(tmp_path / "cache"))
    assert not stale.exists()
