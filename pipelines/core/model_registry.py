"""The MLflow model registry: each export a version of a registered model, aliases such as
`production` saying which version a deployment serves (`models:/NAME@production`).

A version the release gate passed is tagged `blessed=true` (with the gate's comparisons);
`promote` moves an alias only to a blessed version unless forced. The aliases are also
TF Serving's version labels in `models.config` (`serving_labels`).

Works with any DB-backed store: the embedded `W/mlflow.db` or a tracking server."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipelines.core.config import BatchingConfig, ConfigError, ExportConfig
from pipelines.core.gate import GateResult
from pipelines.core.tracking import NotTracked, tracking_uri

BLESSED_TAG = "blessed"
LABEL = re.compile(r"[A-Za-z0-9_-]+")  # what TF Serving takes as a version label


class NotBlessed(ValueError):
    """`promote` of a version the release gate did not pass, without `force`."""


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
    gate: GateResult | None = None,
) -> str | None:
    """Register the model logged to `run_id` under `artifact_path` as a new version when
    `export.register` is on; returns that version. Blessed when `gate` passed it (then
    `export.gate.candidate_alias` moves to it); without a gate, not blessed."""
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
    blessed = gate is not None and gate.passed
    tags = {"export_dir": str(export_dir), "export_version": Path(export_dir).name}
    tags[BLESSED_TAG] = str(blessed).lower()
    tags.update(gate.tags() if gate is not None else {"gate": "none configured"})
    version = client.create_model_version(
        name, f"runs:/{run_id}/{artifact_path}", run_id=run_id, tags=tags
    )
    number = str(version.version)  # an int from the embedded store, a str from a server
    print(f"[{pipeline}] registered {export_dir} as model '{name}' version {number}", flush=True)
    candidate = export.gate.candidate_alias
    if blessed and candidate:
        client.set_registered_model_alias(name, candidate, number)
        print(f"[{pipeline}] blessed: models:/{name}@{candidate} is version {number}", flush=True)
    return number


def resolve_version(name: str, version: str, workdir: Path) -> str:
    """The version number that `version` (a number, or an alias such as `candidate`) names
    in registered model `name`. Unknown models and versions are KeyErrors that say what
    exists."""
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
    number = str(model.aliases.get(str(version), version))
    if number not in versions:
        aliases = ", ".join(f"{a} -> {v}" for a, v in sorted(model.aliases.items()))
        raise NotTracked(
            f"registered model '{name}' has no version {version} (versions: "
            f"{', '.join(versions) or 'none'})"
            + (f" and no alias of that name (aliases: {aliases})" if aliases else "")
        )
    return number


def promote(name: str, version: str, alias: str, workdir: Path, force: bool = False) -> str | None:
    """Point `alias` of registered model `name` at `version` (a number, or an alias such as
    `candidate`: see `resolve_version`) and rewrite models.config; returns the version the
    alias named before (None if it is new). A version the gate did not bless is
    `NotBlessed` unless `force`."""
    client = MlflowClient(tracking_uri(workdir))
    version = resolve_version(name, version, workdir)
    tags = client.get_model_version(name, version).tags
    if tags.get(BLESSED_TAG) != "true":
        why = "it failed the gate" if tags.get("gate.passed") == "false" else "no gate passed it"
        if not force:
            raise NotBlessed(
                f"model '{name}' version {version} is not blessed ({why}): not moving "
                f"'{alias}' to it (--force moves it anyway)"
            )
        print(f"warning: promoting unblessed version {version} ({why})", file=sys.stderr)
    before = client.get_registered_model(name).aliases.get(alias)
    client.set_registered_model_alias(name, alias, version)
    refresh_models_config(workdir)
    return None if before is None else str(before)


def serving_labels(workdir: Path, exports_dir: Path) -> dict[str, dict[str, int]]:
    """TF Serving version labels from the registry's aliases: model folder under
    `exports_dir` -> {alias: export version}, for aliases whose version was exported into
    `exports_dir` (its `export_dir` tag names it) and whose name TF Serving takes."""
    client = MlflowClient(tracking_uri(workdir))
    exports_dir = Path(exports_dir).resolve()
    labels: dict[str, dict[str, int]] = {}
    for model in _all_registered_models(client):
        for alias, number in sorted(model.aliases.items()):
            if not LABEL.fullmatch(alias):
                continue
            tags = client.get_model_version(model.name, str(number)).tags
            folder = Path(tags.get("export_dir", "/"))
            if folder.name.isdigit() and folder.parent.parent == exports_dir and folder.is_dir():
                labels.setdefault(folder.parent.name, {})[alias] = int(folder.name)
    return labels


def _all_registered_models(client: MlflowClient) -> list:
    found, token = [], None
    while True:
        page = client.search_registered_models(max_results=100, page_token=token)
        found += list(page)
        token = page.token
        if not token:
            return found


def is_model_uri(text: str) -> bool:
    return text.startswith("models:/")


def download_model(uri: str, workdir: Path, target: Path) -> Path:
    """The folder of a registered version (`models:/NAME@ALIAS`, `models:/NAME/VERSION`)
    downloaded into `target`, from MLFLOW_TRACKING_URI or `workdir`'s store: the SavedModel
    (with the MLflow Model's files beside it). Resolved here with an explicit client:
    `mlflow.artifacts.download_artifacts` reads `models:/` URIs from the global store."""
    import mlflow.artifacts

    store = tracking_uri(workdir)
    client = MlflowClient(store)
    reference = uri.removeprefix("models:/").rstrip("/")
    name, at, alias = reference.partition("@")
    try:
        if at:
            version = str(client.get_model_version_by_alias(name, alias).version)
        else:
            name, _, version = reference.rpartition("/")
            client.get_model_version(name, version)
        source = client.get_model_version_download_uri(name, version)
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=str(target), tracking_uri=store
        )
    except MlflowException as exc:
        raise NotTracked(f"{uri}: not in the registry at {store}: {exc.message}") from None
    return Path(path)


def refresh_models_config(workdir: Path, batching: BatchingConfig | None = None) -> Path | None:
    """Rewrite `WORKDIR/exports/models.config` with the registry's aliases as version
    labels (and `batching_parameters.txt` when `batching` is given); None without exports."""
    from pipelines.core.export import write_models_config

    exports = Path(workdir) / "exports"
    if not exports.is_dir():
        return None
    tracked = os.environ.get("MLFLOW_TRACKING_URI") or (Path(workdir) / "mlflow.db").exists()
    labels = serving_labels(workdir, exports) if tracked else {}  # no store made for it
    return write_models_config(exports, labels=labels, batching=batching)
