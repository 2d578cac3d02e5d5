"""Image sets shipped as archives (.tar.gz, .tgz, .tar, .zip), extracted once into a cache.

Reading a benchmark straight from its archive means no unpacking step to forget or to get
wrong. Each archive is extracted into its own folder, named by the archive's name, size and
modification time (a changed archive gets a fresh folder), first into a hidden temporary
folder beside it that is renamed into place when complete: a crash leaves nothing that
looks finished, and of two runs extracting at once the second to finish uses the first's
folder. Members that would land outside the folder are refused, by name, before anything
is written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from pipelines.image_input import tfrecord
from pipelines.image_input.reader import IMAGE_EXTENSIONS, ImageDataError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
STALE_SECONDS = 24 * 3600  # a temporary folder this old belongs to a run that died
IGNORED = ("__MACOSX",)  # resource forks zipped on macOS


def is_archive(path: Path) -> bool:
    return Path(path).name.lower().endswith(ARCHIVE_SUFFIXES)


def cache_root(extract_dir: str = "") -> Path:
    """`data.extract_dir`, else `$TFPIPE_CACHE_DIR/extracted`, else the user's cache."""
    if extract_dir:
        return Path(extract_dir).expanduser()
    base = os.environ.get("TFPIPE_CACHE_DIR")
    return (
        Path(base).expanduser() / "extracted"
        if base
        else (Path.home() / ".cache" / "tfpipelines" / "extracted")
    )


def archive_root(archive: Path, extract_dir: str = "") -> Path:
    """The image folder inside `archive`, extracted on first use."""
    return find_root(extract(archive, cache_root(extract_dir)))


def extract(archive: Path, cache: Path) -> Path:
    """`archive` extracted under `cache` (once; later calls return the same folder)."""
    archive = Path(archive)
    if not archive.is_file():
        raise ImageDataError(f"archive {archive} does not exist")
    stat = archive.stat()
    stem = archive.name[
        : -len(next(s for s in ARCHIVE_SUFFIXES if archive.name.lower().endswith(s)))
    ]
    target = cache / f"{stem}-{stat.st_size}-{stat.st_mtime_ns}"
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    _remove_stale(cache, target.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=cache))
    print(f"[images] extracting {archive.name} to {target} ...", flush=True)
    started = time.perf_counter()
    try:
        if archive.name.lower().endswith(".zip"):
            _unzip(archive, tmp)
        elif shutil.which("tar"):
            _untar_binary(archive, tmp)
        else:
            _untar_python(archive, tmp)
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide a shared cache from other users
        try:
            tmp.rename(target)
        except OSError:
            if not target.is_dir():
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another run finished first: use its copy
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"[images] extracted {archive.name} in {time.perf_counter() - started:.1f}s", flush=True)
    return target


def find_root(folder: Path) -> Path:
    """Descend through lone folders (`cifar10/`) to where the images or splits are."""
    while not tfrecord.is_tfrecord_dir(folder):
        entries = [
            p for p in folder.iterdir() if not p.name.startswith(".") and p.name not in IGNORED
        ]
        folders = [p for p in entries if p.is_dir()]
        if len(folders) != 1 or any(p.suffix.lower() in IMAGE_EXTENSIONS for p in entries):
            break
        folder = folders[0]
    return folder


# -- extraction -----------------------------------------------------------------------------
def _check_name(archive: Path, name: str) -> None:
    """Refuse absolute member names and names climbing out with `..`."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ImageDataError(
            f"{archive}: member '{name}' would be extracted outside the "
            "target folder; refusing the archive"
        )


def _untar_binary(archive: Path, dest: Path) -> None:
    """GNU tar: 60,000 small files in seconds, where Python's tarfile takes a minute.

    Names are checked from a listing first; tar itself does not write through links, and
    any link or special file left in the result is refused (tarfile's `data` filter rules).
    """
    listing = _run(["tar", "-tf", str(archive)], archive)
    for name in listing.splitlines():
        _check_name(archive, name)
    _run(
        ["tar", "-xf", str(archive), "-C", str(dest), "--no-same-owner", "--no-same-permissions"],
        archive,
    )
    for folder, dirs, files in os.walk(dest):
        for name in dirs + files:
            path = Path(folder) / name
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                raise ImageDataError(
                    f"{archive}: member '{path.relative_to(dest)}' is a link "
                    "or special file; refusing the archive"
                )


def _run(command: list[str], archive: Path) -> str:
    done = subprocess.run(command, capture_output=True, text=True, errors="replace")
    if done.returncode:
        raise ImageDataError(f"{archive}: cannot extract ({done.stderr.strip()})")
    return done.stdout


def _untar_python(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, members=tqdm(tar, unit=" files", desc=archive.name), filter="data")
    except tarfile.FilterError as exc:
        raise ImageDataError(
            f"{archive}: member '{exc.tarinfo.name}' is refused ({exc}); refusing the archive"
        ) from exc
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ImageDataError(f"{archive}: cannot extract ({exc})") from exc


def _unzip(archive: Path, dest: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            for member in members:
                _check_name(archive, member.filename)
            for member in tqdm(members, unit=" files", desc=archive.name):
                zipped.extract(member, dest)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImageDataError(f"{archive}: cannot extract ({exc})") from exc


def _remove_stale(cache: Path, name: str) -> None:
    """Temporary folders of this archive left by runs that died mid-extraction."""
    for path in cache.glob(f".{name}.*.tmp"):
        try:
            if time.time() - path.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass
