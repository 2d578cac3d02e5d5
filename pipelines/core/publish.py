"""The one way a trained model is released, for `tfpipe run` and `tfpipe export` alike:

1. the release gate (`export.gate`) on the run's logged test metrics; failing it, nothing
   below happens (no SavedModel version for TF Serving to pick up, nothing registered) and
   the run's `gate.*` tags say why;
2. a new SavedModel version under `WORKDIR/exports/PIPELINE/`;
3. the run's export tags, and the version logged with the run as an MLflow Model (a pyfunc
   that is also the SavedModel, `pipelines.core.mlflow_model`);
4. that MLflow Model registered (`export.register`): blessed when the gate passed it, and
   `export.gate.candidate_alias` moved to it;
5. `models.config` rewritten with the registry's aliases as version labels, and
   `batching_parameters.txt` from `export.batching`.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelines.core.config import ConfigError, ExportConfig, PipelineConfig
from pipelines.core.gate import GateResult, check_gate, check_gate_names
from pipelines.core.task import Serving


@dataclasses.dataclass
class Published:
    """What a release came to."""

    export_dir: Path | None  # None: the gate blocked it
    version: str | None  # the registered model version, if one was registered
    gate: GateResult | None  # None: no gate configured

    @property
    def blocked(self) -> bool:
        return self.gate is not None and not self.gate.passed


def check_release(export: ExportConfig) -> None:
    """Refuse, before any training or export, settings a release could not follow."""
    from pipelines.core.model_registry import check_registrable

    check_registrable(export)
    check_gate_names(export.gate)


def publish(
    pipeline: str,
    task: Any,  # pipelines.core.task.Task: its `lower_is_better`
    config: PipelineConfig,
    signatures: Callable[[], dict[str, Serving]],
    workdir: Path,
    run_id: str | None,
    warmup_inputs: dict[str, list[Any]],
    metadata: dict[str, Any],
    artifact_path: str | None = None,
    overrides: list[str] | None = None,
) -> Published:
    """Gate, export, log, register and label one model (see the module's docstring).

    `signatures` is called only when the gate lets the export through. The MLflow Model
    goes to the run's artifact `artifact_path`, else `savedmodel-vN` (N: the export's
    version); `overrides` (a re-export's changed keys) are tagged as `export_vN_overrides`."""
    from mlflow.tracking import MlflowClient

    from pipelines.core.export import export_version
    from pipelines.core.mlflow_model import save_mlflow_model
    from pipelines.core.model_registry import (
        refresh_models_config,
        register_export,
        registered_model_name,
    )
    from pipelines.core.tracking import tracking_uri

    export = config.export
    check_release(export)
    client = MlflowClient(tracking_uri(workdir)) if run_id else None
    gate = None
    if export.gate.configured:
        if run_id is None:
            raise ConfigError(
                "export.gate judges the test metrics an MLflow run logged, and this kept "
                "model is not a run's: name the run (--run RUN_ID) or drop export.gate"
            )
        gate = check_gate(
            workdir,
            export.gate,
            registered_model_name(export, pipeline),
            task.lower_is_better,
            run_id,
        )
        _set_tags(client, run_id, gate.tags())
        if not gate.passed:
            return Published(None, None, gate)
        print(gate.message(pipeline), flush=True)

    served = signatures()
    export_dir = export_version(
        served,
        Path(workdir) / "exports",
        pipeline,
        warmup_inputs=warmup_inputs,
        warmup_count=export.warmup_requests,
        serving_base_path=export.serving_base_path,
        metadata=metadata,
        write_config=False,  # step 5 writes it, labels and all
    )
    version = None
    if client is not None:
        tags = {"export_dir": str(export_dir), "export_version": export_dir.name}
        if overrides is not None:
            tags[f"export_v{export_dir.name}_overrides"] = " ".join(overrides) or "(none)"
        _set_tags(client, run_id, tags)
        if export.log_to_mlflow:
            path = artifact_path or f"savedmodel-v{export_dir.name}"
            with tempfile.TemporaryDirectory(prefix="tfpipe-mlflow-model-") as tmp:
                model = save_mlflow_model(export_dir, Path(tmp) / "model", served, warmup_inputs)
                client.log_artifacts(run_id, str(model), path)
            version = register_export(workdir, export, pipeline, run_id, path, export_dir, gate)
    elif export.register:
        print(f"[{pipeline}] not registered: the kept model is not an MLflow run's", flush=True)
    refresh_models_config(Path(workdir), export.batching)
    print(f"[{pipeline}] exported {export_dir}", flush=True)
    return Published(export_dir, version, gate)


def _set_tags(client, run_id: str, tags: dict[str, str]) -> None:
    from mlflow.entities import RunTag

    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
