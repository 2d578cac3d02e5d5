"""The utterances a speech run reads: TSV manifests from a corpus folder, or a
connected-digit corpus built once from FSDD recordings and cached."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from pipelines.core.splits import hold_out
from pipelines.core.textio import DataError
from pipelines.speech.config import SpeechDataConfig
from pipelines.speech.fsdd import (
    build_connected,
    list_extra_recordings,
    list_recordings,
    split_recordings,
)
from pipelines.speech.manifest import Manifest, Utterance, read_manifest

SPLITS = ("train", "validation", "test")


def cache_root(prepared_dir: str = "") -> Path:
    """`data.prepared_dir`, else `$TFPIPE_CACHE_DIR/speech`, else the user's cache."""
    if prepared_dir:
        return Path(prepared_dir).expanduser()
    base = os.environ.get("TFPIPE_CACHE_DIR")
    return (Path(base) if base else Path.home() / ".cache" / "tfpipelines") / "speech"


def _under(data_dir: Path, folder: str) -> Path:
    """A config's folder: absolute as it is, relative ones under the data dir."""
    return Path(folder) if Path(folder).is_absolute() else data_dir / folder


def extra_training_folders(data_dir: Path, cfg: SpeechDataConfig) -> list[Path]:
    """`data.fsdd_extra_train`, relative ones under the data dir."""
    return [_under(data_dir, f) for f in cfg.fsdd_extra_train]


def _folder_signature(folder: Path) -> dict:
    """What identifies a folder of recordings for the cache: its place, files and size."""
    files = sorted(folder.glob("*.wav"))
    return {
        "folder": str(folder.resolve()),
        "files": len(files),
        "bytes": sum(f.stat().st_size for f in files),
    }


def connected_digits(data_dir: Path, cfg: SpeechDataConfig) -> Path:
    """The connected-digit corpus of `cfg` (built on first use; the same settings find the
    same folder). Built in a hidden folder beside its place and renamed when complete."""
    src = _under(data_dir, cfg.fsdd)
    settings = {
        "src": str(src.resolve()),
        "train": cfg.fsdd_train,
        "dev": cfg.fsdd_dev,
        "test": cfg.fsdd_test,
        "max_digits": cfg.fsdd_max_digits,
        "seed": cfg.fsdd_seed,
        "test_speakers": sorted(cfg.test_speakers),
        "isolated_train": cfg.fsdd_isolated_train,
        "rate": cfg.sample_rate,
        "joiner": 2,
    }  # 2: bare edges, digital silence
    extra = extra_training_folders(data_dir, cfg)
    if extra:  # only then: the corpora built before the option keep their keys
        settings["extra_train"] = [_folder_signature(f) for f in extra]
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    root = cache_root(cfg.prepared_dir)
    target = root / f"fsdd-connected-{key}"
    if (target / "settings.json").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
    try:
        print(f"[speech] building connected digits from {src} into {target}", flush=True)
        build_connected(
            src,
            tmp,
            cfg.fsdd_train,
            cfg.fsdd_dev,
            cfg.fsdd_test,
            max_digits=cfg.fsdd_max_digits,
            test_speakers=cfg.test_speakers,
            seed=cfg.fsdd_seed,
            isolated_train=cfg.fsdd_isolated_train,
            extra_train=extra,
        )
        (tmp / "settings.json").write_text(json.dumps(settings, indent=1), encoding="utf-8")
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "settings.json").exists():  # not a concurrent builder's win
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def fsdd_training_recordings(data_dir: Path, cfg: SpeechDataConfig):
    """(the single recordings the training split joins, the extra ones it uses alone), for
    fresh combinations."""
    src = _under(data_dir, cfg.fsdd)
    fsdd = list_recordings(src)
    splits = split_recordings(fsdd, test_speakers=cfg.test_speakers, seed=cfg.fsdd_seed)
    return splits["train"], list_extra_recordings(extra_training_folders(data_dir, cfg), fsdd)


def read_splits(
    data_dir: Path, cfg: SpeechDataConfig, seed: int
) -> tuple[dict[str, list[Utterance]], list[Utterance], list[Path]]:
    """(utterances by split, isolated-word test utterances, manifest files read)."""
    folder = connected_digits(data_dir, cfg) if cfg.fsdd else data_dir / cfg.corpus
    if not folder.is_dir():
        raise DataError(f"{folder}: no such corpus folder (data.corpus)")
    read: list[Path] = []

    def manifest(name: str) -> Manifest | None:
        path = folder / name
        if not name or not path.exists():
            return None
        found = read_manifest(path, on_error=cfg.on_error)
        if found.num_skipped:
            print(
                f"[speech] {path}: skipped {found.num_skipped} lines "
                f"({', '.join(f'{k}: {v}' for k, v in found.skipped.items())})",
                flush=True,
            )
        read.append(path)
        return found

    train = manifest(cfg.train)
    if train is None:
        raise DataError(f"{folder / cfg.train}: no training manifest (data.train)")
    utts = [u for u in train.utterances if u.seconds <= cfg.max_train_seconds]
    validation = manifest(cfg.validation)
    if validation is None:
        utts, val = hold_out(utts, cfg.val_fraction, seed)
    else:
        val = validation.utterances
    test = manifest(cfg.test)
    if test is None:
        raise DataError(f"{folder / cfg.test}: no test manifest (data.test)")
    isolated = manifest(cfg.isolated_test)
    return (
        {"train": utts, "validation": val, "test": test.utterances},
        isolated.utterances if isolated else [],
        read,
    )
