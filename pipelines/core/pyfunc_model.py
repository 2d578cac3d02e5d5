"""An export as an MLflow pyfunc model: `mlflow.pyfunc.load_model("models:/NAME@ALIAS")` and
`mlflow models serve` call the SavedModel's signatures with raw inputs, as TF Serving does.

MLflow runs this file from inside the logged model ("models from code", no pickle): it
imports TensorFlow, numpy and pandas, never this project, and loads the SavedModel that lies
beside it (the logged folder is at once an MLflow Model and a SavedModel, see
`pipelines.core.mlflow_model`). One row in per request element; one row out, a column per
output: text as text, other bytes (an encoded image) as base64, arrays as lists.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

MODEL_DIR = Path(__file__).resolve().parent  # MLflow executes the copy inside the model
DEFAULT_SIGNATURE = "serving_default"
SIGNATURE_PARAM = "signature"


class SavedModelPyfunc(mlflow.pyfunc.PythonModel):
    """Calls one signature of the SavedModel in `MODEL_DIR` (`params={"signature": ...}`,
    default `serving_default`) with the input frame's columns as its inputs."""

    def load_context(self, context) -> None:
        import tensorflow as tf

        try:
            import tensorflow_text  # noqa: F401  (registers the tf-text ops some graphs use)
        except ImportError:
            pass
        self.loaded = tf.saved_model.load(str(MODEL_DIR))

    def predict(
        self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        import tensorflow as tf

        name = (params or {}).get(SIGNATURE_PARAM) or DEFAULT_SIGNATURE
        if name not in self.loaded.signatures:
            names = ", ".join(sorted(self.loaded.signatures))
            raise KeyError(f"no signature '{name}' (the model has: {names})")
        function = self.loaded.signatures[name]
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        specs = function.structured_input_signature[1]
        missing = sorted(set(specs) - set(frame.columns))
        if missing:
            raise KeyError(f"signature '{name}' needs input column(s) {missing}")
        outputs = function(**{k: tf.constant(_column(frame[k], s)) for k, s in specs.items()})
        return pd.DataFrame({k: [_plain(row) for row in v.numpy()] for k, v in outputs.items()})


def _column(values: pd.Series, spec) -> np.ndarray:
    """One input column as the array the signature takes (strings and bytes as objects)."""
    if spec.dtype.name == "string":
        return np.array([v.encode("utf-8") if isinstance(v, str) else v for v in values], object)
    return np.asarray([np.asarray(v) for v in values], dtype=spec.dtype.as_numpy_dtype)


def _plain(value: Any) -> Any:
    """A JSON-ready value: text as str, other bytes as base64, arrays as lists."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    return value.item() if isinstance(value, np.generic) else value


mlflow.models.set_model(SavedModelPyfunc())
