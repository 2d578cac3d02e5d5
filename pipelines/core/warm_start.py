"""Warm start (`train.init_from`): a run begins from the weights an earlier run of the same
pipeline kept, instead of a random initialisation.

The earlier run's kept model (`pipelines.core.trained_model`) is found by MLflow run id, run
name or folder, as `tfpipe export --run` finds it. Its weights fit only a model built alike:
the same vocabularies and other assets, compared file by file with what this run's task
writes from its own data, and the same `model.*` sizes, which `load_weights` checks variable
by variable. Either mismatch is a `ConfigError` that says what differs. Only the weights
come over: the optimizer, schedule and epoch count start afresh.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import yaml

from pipelines.core import config as cfgmod
from pipelines.core.trained_model import (
    ASSETS,
    CONFIG,
    MARKER,
    WEIGHTS,
    TrainedModelError,
    find_trained_model,
    load_weights,
)

KEY = "train.init_from"
VOCABULARY_SUFFIXES = (".txt", ".tsv")  # one entry a line (`task.write_vocabulary`)


def warm_start(task, model, ref: str, pipeline: str, workdir: Path) -> str:
    """Set `model`'s weights from the kept model `ref` names; returns its run id (the
    folder where `ref` is one). `task` has read its data (its assets are compared)."""
    with tempfile.TemporaryDirectory(prefix="tfpipe-init-from-") as tmp:
        try:
            folder, run_id = find_trained_model(pipeline, ref, Path(workdir), Path(tmp) / "kept")
        except TrainedModelError as exc:
            raise cfgmod.ConfigError(f"{KEY}={ref}: {exc}") from exc
        kept_pipeline = json.loads((folder / MARKER).read_text(encoding="utf-8"))["pipeline"]
        if kept_pipeline != pipeline:
            raise cfgmod.ConfigError(
                f"{KEY}={ref}: that is a model of the '{kept_pipeline}' pipeline, not '{pipeline}'"
            )
        now = Path(tmp) / "now"
        task.save_assets(now)
        differences = asset_differences(folder / ASSETS, now, skip=task.calibrated_assets)
        if differences:
            raise cfgmod.ConfigError(
                f"{KEY}={ref}: the kept model's vocabularies and other assets are not this "
                "run's (its data or data.* options differ): " + "; ".join(differences)
            )
        weights = folder / WEIGHTS
        try:
            load_weights(model, weights)
        except TrainedModelError as exc:
            sizes = model_differences(folder / CONFIG, task.config)
            hint = f"model.* keys that differ: {', '.join(sizes)}; " if sizes else ""
            detail = str(exc).removeprefix(f"{weights}: ")  # a temporary download's path
            raise cfgmod.ConfigError(
                f"{KEY}={ref}: the kept weights do not fit this run's model ({hint}{detail})"
            ) from exc
    source = run_id or str(folder)
    print(f"[{pipeline}] starting from the weights of {source} ({KEY})", flush=True)
    return source


def asset_differences(kept: Path, now: Path, skip: tuple[str, ...] = ()) -> list[str]:
    """One line per asset file that is not the same in `kept` and `now` (folders of
    `Task.save_assets`), named `assets/NAME`; files in `skip` are not compared."""

    def files(root: Path) -> set[str]:
        if not root.is_dir():
            return set()
        return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}

    kept_files, now_files = files(kept), files(now)
    out = []
    for name in sorted((kept_files | now_files) - set(skip)):
        label = f"{ASSETS}/{name}"
        if name not in now_files:
            out.append(f"{label}: in the kept model, not written by this run")
        elif name not in kept_files:
            out.append(f"{label}: written by this run, not in the kept model")
        else:
            before, after = (kept / name).read_bytes(), (now / name).read_bytes()
            if before != after:
                out.append(f"{label}: {_how_they_differ(name, before, after)}")
    return out


def _how_they_differ(name: str, kept: bytes, now: bytes) -> str:
    try:
        kept_lines, now_lines = (_lines(b.decode("utf-8")) for b in (kept, now))
    except UnicodeDecodeError:
        return f"{len(kept)} bytes kept, {len(now)} now; their contents differ"
    unit = "entries" if name.endswith(VOCABULARY_SUFFIXES) else "lines"
    first = next(
        (i for i, (a, b) in enumerate(zip(kept_lines, now_lines, strict=False)) if a != b),
        min(len(kept_lines), len(now_lines)),
    )

    def at(lines: list[str]) -> str:
        return repr(lines[first]) if first < len(lines) else "(end of file)"

    return (
        f"{len(kept_lines)} {unit} kept, {len(now_lines)} now; first difference at line "
        f"{first + 1}: {at(kept_lines)} vs {at(now_lines)}"
    )


def _lines(text: str) -> list[str]:
    """Lines split on newlines only (as `read_vocabulary` does: entries may hold other
    line-breaking characters)."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def model_differences(kept_config: Path, config: cfgmod.PipelineConfig) -> list[str]:
    """`model.KEY: KEPT kept, NOW now` for each model setting the kept run had otherwise."""
    try:
        kept: dict[str, Any] = yaml.safe_load(kept_config.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    before = cfgmod.flatten({"model": kept.get("model") or {}})
    after = cfgmod.flatten({"model": cfgmod.to_dict(config).get("model") or {}})
    return [
        f"{key}: {before.get(key)!r} kept, {after.get(key)!r} now"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]
