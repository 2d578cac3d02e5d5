"""SavedModel export in the layout TF Serving reads: `exports/PIPELINE/VERSION/`.

A version is written to a hidden temporary folder beside its final place and renamed into
place, so a crash never leaves a half-written version that TF Serving would try to load.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from pipelines.core.task import Serving

log = logging.getLogger(__name__)

WARMUP_FILE = "tf_serving_warmup_requests"


def versions(model_dir: Path) -> list[int]:
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def latest_export(exports_dir: Path, pipeline: str) -> Path:
    found = versions(exports_dir / pipeline)
    if not found:
        raise FileNotFoundError(f"no export of '{pipeline}' under {exports_dir / pipeline}")
    return exports_dir / pipeline / str(found[-1])


def _warmup_records(inputs: dict[str, list[Any]], model_name: str, count: int) -> list[bytes]:
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    n = min(count, min(len(v) for v in inputs.values()))
    records = []
    for i in range(n):
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name="serving_default")
        )
        for key, values in inputs.items():
            value = values[i]
            array = np.array([value], dtype=object if isinstance(value, str | bytes) else None)
            request.inputs[key].CopyFrom(tf.make_tensor_proto(array))
        log_entry = prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)
        )
        records.append(log_entry.SerializeToString())
    return records


def write_savedmodel(serving: Serving, path: Path) -> None:
    """Write `serving` as a SavedModel whose `serving_default` takes the raw inputs."""
    archive = keras.export.ExportArchive()
    for resource in serving.resources:
        archive.track(resource)
    names = list(serving.input_signature)
    specs = [serving.input_signature[n] for n in names]

    def endpoint(*args):
        return serving.fn(**dict(zip(names, args, strict=True)))

    # Positional parameters named as the inputs: they become TF Serving's request keys.
    endpoint.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    )
    archive.add_endpoint("serving_default", endpoint, input_signature=specs)
    archive.write_out(str(path), verbose=False)


def export_version(
    serving: Serving,
    exports_dir: Path,
    pipeline: str,
    warmup_inputs: dict[str, list[Any]] | None = None,
    warmup_count: int = 5,
    serving_base_path: str = "/models",
) -> Path:
    """Export the next version atomically; update `models.config`. Returns the version dir."""
    model_dir = Path(exports_dir) / pipeline
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-export-", dir=model_dir))
    try:
        write_savedmodel(serving, tmp / "model")
        if warmup_inputs and warmup_count > 0:
            extra = tmp / "model" / "assets.extra"
            extra.mkdir(parents=True, exist_ok=True)
            with tf.io.TFRecordWriter(str(extra / WARMUP_FILE)) as writer:
                for record in _warmup_records(warmup_inputs, pipeline, warmup_count):
                    writer.write(record)
        while True:  # another exporter may take a number first: try the next one
            version = (versions(model_dir) or [0])[-1] + 1
            final = model_dir / str(version)
            try:
                os.rename(tmp / "model", final)
                break
            except OSError:
                if not final.exists():
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_models_config(Path(exports_dir), serving_base_path)
    log.info("exported %s", final)
    return final


def write_models_config(exports_dir: Path, serving_base_path: str = "/models") -> Path:
    """TF Serving `--model_config_file` listing every exported model under `exports_dir`."""
    entries = []
    for model_dir in sorted(p for p in exports_dir.iterdir() if p.is_dir()):
        if not versions(model_dir) or not re.fullmatch(r"[A-Za-z0-9_.-]+", model_dir.name):
            continue
        entries.append(
            "  config {\n"
            f"    name: '{model_dir.name}'\n"
            f"    base_path: '{serving_base_path.rstrip('/')}/{model_dir.name}'\n"
            "    model_platform: 'tensorflow'\n"
            "  }\n"
        )
    text = "model_config_list {\n" + "".join(entries) + "}\n"
    path = exports_dir / "models.config"
    tmp = path.with_suffix(".config.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path
