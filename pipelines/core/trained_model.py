"""The trained model every run keeps, so it can be exported again without training.

A folder (in the run's state folder and, as the artifact `model/`, in MLflow):

    model/trained_model.json   pipeline, run, versions: what this folder is
    model/config.yaml          the resolved config the model was trained with
    model/assets/              what the task needs besides weights (vocabularies, labels)
    model/weights.npz          the model's variables, keyed by their Keras paths
    model/warmup.json          raw example requests for TF Serving's warm-up file

Weights are keyed by position and variable path, not kept in a `.keras` file: every task
rebuilds its model from config and assets anyway (`Task.build_model`), and a path-keyed
file says which variable is missing or misshapen when code and weights disagree.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import keras
import numpy as np

from pipelines.core import config as cfgmod
from pipelines.core.precision import serving_precision
from pipelines.core.run_layout import run_dir_for

MARKER = "trained_model.json"
CONFIG = "config.yaml"
ASSETS = "assets"
WEIGHTS = "weights.npz"
WARMUP = "warmup.json"
ARTIFACT_PATH = "model"
#: Config sections that may change when a kept model is exported again.
REEXPORT_SECTIONS = ("serving", "export")


class TrainedModelError(FileNotFoundError):
    """No kept model where the user pointed, or one that does not fit the code."""


def save_trained_model(
    task, model: keras.Model, config: cfgmod.PipelineConfig, folder: Path, run_id: str | None = None
) -> Path:
    """Write `model` with its config, the task's assets and warm-up inputs to `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG).write_text(cfgmod.dump_yaml(config), encoding="utf-8")
    task.save_assets(folder / ASSETS)
    save_weights(model, folder / WEIGHTS)
    (folder / WARMUP).write_text(json.dumps(encode_inputs(task.warmup_inputs())), encoding="utf-8")
    (folder / MARKER).write_text(
        json.dumps(
            {
                "pipeline": task.name,
                "run_id": run_id,
                "model": model.name,
                "keras": keras.__version__,
                "params": int(model.count_params()),
            },
            indent=1,
        ),
        encoding="utf-8",
    )
    return folder


def save_weights(model: keras.Model, path: Path) -> None:
    """Every variable of `model`, in order, keyed `NNNN:path` (paths alone need not be
    unique: ensemble members repeat their layers' names)."""
    np.savez(
        path,
        **{f"{i:04d}:{v.path}": keras.ops.convert_to_numpy(v) for i, v in enumerate(model.weights)},
    )


def load_weights(model: keras.Model, path: Path) -> None:
    """Set `model`'s variables from `save_weights`' file, naming any that do not match."""
    with np.load(path) as saved:
        stored = sorted(saved.files)
        wanted = [f"{i:04d}:{v.path}" for i, v in enumerate(model.weights)]
        if stored != wanted:
            missing = [k for k in wanted if k not in saved.files]
            extra = [k for k in stored if k not in set(wanted)]
            raise TrainedModelError(
                f"{path}: weights do not fit the model built from its config "
                f"(missing: {missing[:5]}, unexpected: {extra[:5]})"
            )
        for key, variable in zip(wanted, model.weights, strict=True):
            value = saved[key]
            if tuple(value.shape) != tuple(variable.shape):
                raise TrainedModelError(
                    f"{path}: {variable.path} has shape {value.shape}, "
                    f"the model {tuple(variable.shape)}"
                )
            variable.assign(value)


def load_config(task_cls, folder: Path, overrides: list[str] | tuple[str, ...] = ()):
    """The kept config with `overrides`, which may only touch `serving.*` and `export.*`:
    anything else would not fit the trained weights."""
    for text in overrides:
        key, _ = cfgmod.parse_override(text)
        if key.split(".")[0] not in REEXPORT_SECTIONS:
            raise cfgmod.ConfigError(
                f"'{key}' cannot change at re-export: only {', '.join(REEXPORT_SECTIONS)} "
                "keys can (the trained weights fix the rest)"
            )
    return cfgmod.load_config(task_cls.config_class, Path(folder) / CONFIG, overrides)


def load_trained_model(task_cls, folder: Path, overrides: list[str] | tuple[str, ...] = ()):
    """(task, model, config) rebuilt from a kept model, no training data read.

    Keras' name counters start afresh first, as for a run (`runner.set_up`): weights are
    keyed by variable path, and a second model built in one process (a re-export after a
    run, or after another re-export) would otherwise have `lstm_1` where they say `lstm`."""
    import keras

    keras.backend.clear_session()
    folder = Path(folder)
    config = load_config(task_cls, folder, overrides)
    keras.mixed_precision.set_global_policy(serving_precision(config))
    task = task_cls(config, None)
    task.load_assets(folder / ASSETS)
    model = task.build_model()
    load_weights(model, folder / WEIGHTS)
    return task, model, config


def warmup_inputs(folder: Path) -> dict[str, list[Any]]:
    path = Path(folder) / WARMUP
    if not path.exists():
        return {}
    return decode_inputs(json.loads(path.read_text(encoding="utf-8")))


def encode_inputs(inputs: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    """Raw inputs as JSON: text as is, bytes as base64, numbers as lists."""
    out = {}
    for name, values in inputs.items():
        values = list(values)
        if values and isinstance(values[0], bytes):
            out[name] = {"bytes": [base64.b64encode(v).decode("ascii") for v in values]}
        elif values and isinstance(values[0], str):
            out[name] = {"text": values}
        else:
            out[name] = {
                "array": np.asarray(values).tolist(),
                "dtype": str(np.asarray(values).dtype),
            }
    return out


def decode_inputs(encoded: dict[str, dict[str, Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for name, value in encoded.items():
        if "bytes" in value:
            out[name] = [base64.b64decode(v) for v in value["bytes"]]
        elif "text" in value:
            out[name] = list(value["text"])
        else:
            out[name] = list(np.asarray(value["array"], dtype=value["dtype"]))
    return out


def is_trained_model(folder: Path) -> bool:
    return (Path(folder) / MARKER).is_file()


def find_trained_model(
    pipeline: str, ref: str, workdir: Path, download_to: Path
) -> tuple[Path, str | None]:
    """(folder, MLflow run id or None) of the kept model that `ref` names: a folder, an
    MLflow run id, the newest finished run of that name in the pipeline's experiment, or
    the run name's state folder under `workdir`. MLflow artifacts are downloaded into
    `download_to`."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from pipelines.core.tracking import tracking_uri

    for candidate in (Path(ref), Path(ref) / ARTIFACT_PATH):
        if is_trained_model(candidate):
            return candidate, None
    uri = tracking_uri(Path(workdir))
    client = MlflowClient(uri)
    run = None
    try:
        run = client.get_run(ref)
    except MlflowException:
        experiment = client.get_experiment_by_name(pipeline)
        if experiment is not None:
            found = client.search_runs(
                [experiment.experiment_id],
                filter_string=f"tags.`mlflow.runName` = '{_quoted(ref)}' "
                "and attributes.status = 'FINISHED'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
            run = found[0] if found else None
    if run is not None:
        try:
            path = Path(client.download_artifacts(run.info.run_id, ARTIFACT_PATH, str(download_to)))
        except (MlflowException, OSError) as exc:
            raise TrainedModelError(
                f"run {run.info.run_id} has no kept model (artifact '{ARTIFACT_PATH}/'): {exc}"
            ) from exc
        if is_trained_model(path):
            return path, run.info.run_id
    local = run_dir_for(Path(workdir), pipeline, ref) / ARTIFACT_PATH
    if is_trained_model(local):
        return local, None
    raise TrainedModelError(
        f"no trained model '{ref}' of {pipeline}: not a model folder, not a run id or "
        f"finished run name at {uri}, and no {local}"
    )


def _quoted(text: str) -> str:
    return text.replace("'", "\\'")
