"""An export as an MLflow Model folder that is also the SavedModel itself.

The folder holds the SavedModel's files (`saved_model.pb`, `variables/`, `assets/`,
`assets.extra/`) and, beside them, MLflow's (`MLmodel` with a signature, an input example,
the environment files, `pyfunc_model.py`). So one registered version serves three readers:
`mlflow.pyfunc.load_model` / `mlflow models serve` (through `pipelines.core.pyfunc_model`),
TF Serving or `tf.saved_model.load` on the downloaded folder, and `tfpipe predict`. The
SavedModel is stored once, not copied under `artifacts/`.
"""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

from pipelines.core.task import DEFAULT_SIGNATURE, Serving

CODE_FILE = Path(__file__).with_name("pyfunc_model.py")
EXAMPLE_ROWS = 2
#: What the pyfunc imports when it serves (`--env-manager virtualenv|conda` installs these).
REQUIREMENTS = ("mlflow", "tensorflow", "tensorflow-text", "numpy", "pandas")


def pip_requirements() -> list[str]:
    """The serving requirements pinned to the versions installed here."""
    out = []
    for name in REQUIREMENTS:
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return out


def model_signature(serving: Serving, example: dict[str, list[Any]] | None):
    """The MLflow signature of `serving`: a column per input (text `string`, raw bytes
    `binary`, numbers as arrays) and the `signature` parameter that picks the endpoint."""
    import tensorflow as tf
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, DataType, ParamSchema, ParamSpec, Schema
    from mlflow.types.schema import Array

    columns = []
    for name, spec in serving.input_signature.items():
        values = (example or {}).get(name) or []
        if spec.dtype == tf.string:
            kind = DataType.binary if values and isinstance(values[0], bytes) else DataType.string
            columns.append(ColSpec(kind, name))
        else:
            kind = DataType.double if spec.dtype.is_floating else DataType.long
            columns.append(ColSpec(Array(kind), name))
    params = ParamSchema([ParamSpec("signature", DataType.string, DEFAULT_SIGNATURE)])
    return ModelSignature(inputs=Schema(columns), params=params)


def input_example(example: dict[str, list[Any]] | None):
    """The first warm-up requests of `serving_default` as a frame (None without any)."""
    import pandas as pd

    if not example:
        return None
    return pd.DataFrame({k: list(v[:EXAMPLE_ROWS]) for k, v in example.items()})


def serving_example(
    signatures: dict[str, Serving], inputs: dict[str, list[Any]]
) -> dict[str, list[Any]] | None:
    """`serving_default`'s warm-up inputs (see `export.warmup_for`), None without any."""
    from pipelines.core.export import warmup_for

    try:
        return warmup_for({DEFAULT_SIGNATURE: signatures[DEFAULT_SIGNATURE]}, inputs)[
            DEFAULT_SIGNATURE
        ]
    except ValueError:
        return None


def save_mlflow_model(
    export_dir: Path,
    target: Path,
    signatures: dict[str, Serving],
    warmup_inputs: dict[str, list[Any]],
) -> Path:
    """Write `export_dir` (a SavedModel version of `signatures`) as an MLflow pyfunc model
    to `target` (which must not exist): MLflow's files, then the SavedModel's beside them.
    The signature and input example come from the task's warm-up inputs."""
    import mlflow.pyfunc

    example = serving_example(signatures, warmup_inputs)
    mlflow.pyfunc.save_model(
        str(target),
        python_model=str(CODE_FILE),
        signature=model_signature(signatures[DEFAULT_SIGNATURE], example),
        input_example=input_example(example),
        pip_requirements=pip_requirements(),
    )
    for item in Path(export_dir).iterdir():
        if (target / item.name).exists():
            raise FileExistsError(f"{item.name} of {export_dir} would overwrite MLflow's file")
        copy = shutil.copytree if item.is_dir() else shutil.copy2
        copy(item, target / item.name)
    return target
