"""The MLflow model registry: each export a version of a registered model, aliases such as
`production` saying which version a deployment serves (`models:/NAME@production`).

Works with any DB-backed store: the embedded `W/mlflow.db` or a tracking server."""

from __future__ import annotations

from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipelines.core.config import ConfigError, ExportConfig
from pipelines.core.tracking import NotTracked, tracking_uri


def registered_model_name(export: ExportConfig, pipeline: str) -> str:
    """`export.registered_model`, else the pipeline's name."""
    return export.registered_model or pipeline


def check_registrable(export: ExportConfig) -> None:
    """Refuse, before any training or export, a registration that could not have a source."""
    if export.register and not export.log_to_mlflow:
        raise ConfigError(
            "export.register=true needs export.log_to_mlflow=true (the "
            "registered version's source is the run's logged SavedModel)"
        )


def register_export(
    workdir: Path,
    export: ExportConfig,
    pipeline: str,
    run_id: str,
    artifact_path: str,
    export_dir: Path,
) -> str | None:
    """Register the SavedModel logged to `run_id` under `artifact_path` as a new version
    when `export.register` is on; returns that version."""
    if not export.register:
        return None
    check_registrable(export)
    client = MlflowClient(tracking_uri(workdir))
    name = registered_model_name(export, pipeline)
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(
        name,
        f"runs:/{run_id}/{artifact_path}",
        run_id=run_id,
        tags={"export_dir": str(export_dir), "export_version": Path(export_dir).name},
    )
    print(
        f"[{pipeline}] registered {export_dir} as model '{name}' version {version.version}",
        flush=True,
    )
    return str(version.version)  # an int from the embedded store, a str from a server


def promote(name: str, version: str, alias: str, workdir: Path) -> str | None:
    """Point `alias` of registered model `name` at `version`; returns the version the alias
    named before (None if it is new). Unknown models and versions are KeyErrors that say
    what exists."""
    client = MlflowClient(tracking_uri(workdir))
    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise NotTracked(
            f"no registered model '{name}' at {tracking_uri(workdir)} (run with "
            "--set export.register=true first)"
        ) from None
    versions = sorted(
        (str(v.version) for v in client.search_model_versions(f"name='{name}'")), key=int
    )
    if str(version) not in versions:
        raise NotTracked(
            f"registered model '{name}' has no version {version} (versions: "
            f"{', '.join(versions) or 'none'})"
        )
    before = model.aliases.get(alias)
    client.set_registered_model_alias(name, alias, str(version))
    return None if before is None else str(before)
