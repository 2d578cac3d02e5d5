"""Where a run keeps its things: the data folder it reads, its state folder under the
workdir, and the names of the folders and artifacts inside. Its own module so that the runner,
the kept model and re-export can share it without importing one another."""

from __future__ import annotations

import os
from pathlib import Path

BUNDLED_DATA = Path(__file__).resolve().parents[2] / "data"
CHECKPOINT_DIR = "checkpoint"
SAVEDMODEL_ARTIFACT = "savedmodel"  # the export's MLflow artifact path


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """`--data-dir`, else `TFPIPE_DATA_DIR`, else the sample data bundled under `data/`."""
    chosen = data_dir or os.environ.get("TFPIPE_DATA_DIR") or BUNDLED_DATA
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"data directory {path} does not exist")
    return path


def run_dir_for(workdir: Path, pipeline: str, run_name: str) -> Path:
    """Per-run state: resolved config, checkpoints, kept model, MLflow run id, plots."""
    return Path(workdir) / "state" / pipeline / run_name
