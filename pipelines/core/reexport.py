"""`tfpipe export`: a new SavedModel version from a finished run's kept model, no training.

Serving options (`serving.*`: beam width, top-k, thresholds...) and export settings
(`export.*`, the gate too) may change; the new version is recorded on the source run in
MLflow when the kept model came from there.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from pipelines.core.registry import get_task_class


@dataclasses.dataclass
class ReExport:
    export_dir: Path | None  # None: the release gate blocked it
    model_dir: Path
    run_id: str | None
    gate: Any = None  # pipelines.core.gate.GateResult when export.gate is set
    version: str | None = None  # the registered model version


def export_from_run(
    pipeline: str,
    run: str,
    overrides: list[str] | tuple[str, ...] = (),
    workdir: str | Path = "runs",
) -> ReExport:
    """Release the kept model that `run` names (see `find_trained_model`) with `overrides`
    through the same steps as a training run's export (`pipelines.core.publish`): the gate
    judges the test metrics the run logged, so a run can be gated again without training."""
    from pipelines.core.publish import publish
    from pipelines.core.runner import export_metadata_of
    from pipelines.core.trained_model import find_trained_model, load_config, warmup_inputs

    workdir = Path(workdir).resolve()
    task_cls = get_task_class(pipeline)
    with tempfile.TemporaryDirectory(prefix="tfpipe-model-") as download:
        folder, run_id = find_trained_model(pipeline, run, workdir, Path(download))
        where = f"run {run_id}" if run_id else str(folder)
        print(f"[{pipeline}] exporting the model kept with {where}", flush=True)
        config = load_config(task_cls, folder, overrides)
        published = publish(
            pipeline,
            task_cls,
            config,
            lambda: _signatures(task_cls, folder, overrides),
            workdir,
            run_id,
            warmup_inputs(folder),
            {**export_metadata_of(config, run_id), "overrides": list(overrides)},
            overrides=list(overrides),
        )
    return ReExport(published.export_dir, folder, run_id, published.gate, published.version)


def _signatures(task_cls, folder: Path, overrides) -> dict:
    """The kept model rebuilt and its serving signatures: only once the gate let it through."""
    from pipelines.core.trained_model import load_trained_model

    task, model, _ = load_trained_model(task_cls, folder, overrides)
    return task.signatures(model)
