"""`tfpipe export`: a new SavedModel version from a finished run's kept model, no training.

Serving options (`serving.*`: beam width, top-k, thresholds...) and export settings
(`export.*`) may change; the new version is recorded on the source run in MLflow when the
kept model came from there.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from pipelines.core.registry import get_task_class


@dataclasses.dataclass
class ReExport:
    export_dir: Path
    model_dir: Path
    run_id: str | None


def export_from_run(
    pipeline: str,
    run: str,
    overrides: list[str] | tuple[str, ...] = (),
    workdir: str | Path = "runs",
) -> ReExport:
    """Export the kept model that `run` names (see `find_trained_model`) with `overrides`."""
    from pipelines.core.export import export_version
    from pipelines.core.model_registry import check_registrable, register_export
    from pipelines.core.runner import export_metadata_of
    from pipelines.core.tracking import record_export
    from pipelines.core.trained_model import (
        find_trained_model,
        load_trained_model,
        warmup_inputs,
    )

    workdir = Path(workdir).resolve()
    with tempfile.TemporaryDirectory(prefix="tfpipe-model-") as download:
        folder, run_id = find_trained_model(pipeline, run, workdir, Path(download))
        where = f"run {run_id}" if run_id else str(folder)
        print(f"[{pipeline}] exporting the model kept with {where}", flush=True)
        task, model, config = load_trained_model(get_task_class(pipeline), folder, overrides)
        check_registrable(config.export)
        export_dir = export_version(
            task.signatures(model),
            workdir / "exports",
            pipeline,
            warmup_inputs=warmup_inputs(folder),
            warmup_count=config.export.warmup_requests,
            serving_base_path=config.export.serving_base_path,
            metadata={**export_metadata_of(config, run_id), "overrides": list(overrides)},
        )
    if run_id is not None:
        artifact_path = record_export(
            workdir, run_id, export_dir, list(overrides), log_savedmodel=config.export.log_to_mlflow
        )
        register_export(workdir, config.export, pipeline, run_id, artifact_path, export_dir)
    elif config.export.register:
        print(f"[{pipeline}] not registered: {folder} is not an MLflow run's model", flush=True)
    print(f"[{pipeline}] exported {export_dir}", flush=True)
    return ReExport(export_dir, folder, run_id)
