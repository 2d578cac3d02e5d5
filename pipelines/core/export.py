"""SavedModel export in the layout TF Serving reads: `exports/PIPELINE/VERSION/`, and
TF Serving's `models.config` (with version labels) and `batching_parameters.txt` beside them.

A version is written to a hidden temporary folder beside its final place and renamed into
place, so a crash never leaves a half-written version that TF Serving would try to load.
"""

from __future__ import annotations

import inspect
import json
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

from pipelines.core.config import BatchingConfig
from pipelines.core.task import DEFAULT_SIGNATURE, Serving

log = logging.getLogger(__name__)

WARMUP_FILE = "tf_serving_warmup_requests"
METADATA_FILE = "tfpipelines.json"  # in assets.extra/: where the export came from
MODELS_CONFIG = "models.config"
BATCHING_FILE = "batching_parameters.txt"


def export_metadata(export_dir: Path) -> dict[str, Any]:
    """What `export_version` recorded about an export (pipeline, run, serving options)."""
    path = Path(export_dir) / "assets.extra" / METADATA_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def versions(model_dir: Path) -> list[int]:
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def latest_export(exports_dir: Path, pipeline: str) -> Path:
    found = versions(exports_dir / pipeline)
    if not found:
        raise FileNotFoundError(f"no export of '{pipeline}' under {exports_dir / pipeline}")
    return exports_dir / pipeline / str(found[-1])


def warmup_for(
    signatures: dict[str, Serving], inputs: dict[str, list[Any]]
) -> dict[str, dict[str, list[Any]]]:
    """Warm-up inputs of each signature: its own `warmup`, else the task's inputs of the
    same names. A signature with neither is an error: TF Serving would load it cold."""
    out = {}
    for name, serving in signatures.items():
        chosen = serving.warmup
        if chosen is None and all(k in inputs for k in serving.input_signature):
            chosen = {k: inputs[k] for k in serving.input_signature}
        if not chosen:
            raise ValueError(
                f"signature '{name}': no warm-up inputs for {sorted(serving.input_signature)}"
            )
        out[name] = chosen
    return out


def _warmup_records(
    inputs: dict[str, dict[str, list[Any]]], model_name: str, count: int
) -> list[bytes]:
    """`count` requests for each signature, as TF Serving's warm-up file holds them."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    records = []
    for signature, values_by_input in inputs.items():
        n = min(count, min(len(v) for v in values_by_input.values()))
        for i in range(n):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
            )
            for key, values in values_by_input.items():
                value = values[i]
                array = np.array([value], dtype=object if isinstance(value, str | bytes) else None)
                request.inputs[key].CopyFrom(tf.make_tensor_proto(array))
            log_entry = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            records.append(log_entry.SerializeToString())
    return records


def write_savedmodel(signatures: dict[str, Serving] | Serving, path: Path) -> None:
    """Write a SavedModel with one endpoint per signature, each taking its raw inputs (a
    single `Serving` is `serving_default`)."""
    if isinstance(signatures, Serving):
        signatures = {DEFAULT_SIGNATURE: signatures}
    if DEFAULT_SIGNATURE not in signatures:
        raise ValueError(f"a task must serve '{DEFAULT_SIGNATURE}' (got {sorted(signatures)})")
    if any(not getattr(r, "built", True) for s in signatures.values() for r in s.resources):
        # Layers that only the serving graph calls (a model rebuilt for re-export has never
        # run it): one trace builds them, as Keras wants before it tracks them.
        for serving in signatures.values():
            tf.function(_endpoint(serving)).get_concrete_function(*serving.input_signature.values())
    archive = keras.export.ExportArchive()
    tracked: set[int] = set()
    for serving in signatures.values():
        for resource in serving.resources:
            if id(resource) not in tracked:
                tracked.add(id(resource))
                archive.track(resource)
    for name, serving in signatures.items():
        archive.add_endpoint(
            name, _endpoint(serving), input_signature=list(serving.input_signature.values())
        )
        _keep_one_trace(archive, name)
    archive.write_out(str(path), verbose=False)


def _keep_one_trace(archive, name: str) -> None:
    """Hold endpoint `name` as the concrete function of its one trace. Keras keeps the
    `tf.function`, which `tf.saved_model.save` traces a second time inside its save
    context (a different trace-cache key): for a tagger with its lexicon that doubled the
    export's time. The signature and the loaded endpoint are the same either way."""
    holder = getattr(archive, "_tf_trackable", None)
    fn = getattr(holder, name, None)
    if fn is not None and hasattr(fn, "get_concrete_function"):
        setattr(holder, name, fn.get_concrete_function())


def _endpoint(serving: Serving):
    names = list(serving.input_signature)

    def endpoint(*args):
        return serving.fn(**dict(zip(names, args, strict=True)))

    # Positional parameters named as the inputs: they become TF Serving's request keys.
    endpoint.__signature__ = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    )
    return endpoint


def export_version(
    signatures: dict[str, Serving] | Serving,
    exports_dir: Path,
    pipeline: str,
    warmup_inputs: dict[str, list[Any]] | None = None,
    warmup_count: int = 5,
    serving_base_path: str = "/models",
    metadata: dict[str, Any] | None = None,
    write_config: bool = True,
) -> Path:
    """Export the next version atomically; update `models.config` unless `write_config` is
    off (a release rewrites it once, with the registry's labels: `pipelines.core.publish`).
    Returns the version dir.

    Warm-up requests cover every signature (see `warmup_for`); `metadata` (the run, the
    serving options, `serving_base_path`) goes to `assets.extra/tfpipelines.json`, which
    TF Serving ignores."""
    if isinstance(signatures, Serving):
        signatures = {DEFAULT_SIGNATURE: signatures}
    wanted = warmup_count > 0 and (warmup_inputs or any(s.warmup for s in signatures.values()))
    warmup = warmup_for(signatures, warmup_inputs or {}) if wanted else {}
    model_dir = Path(exports_dir) / pipeline
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-export-", dir=model_dir))
    try:
        write_savedmodel(signatures, tmp / "model")
        extra = tmp / "model" / "assets.extra"
        extra.mkdir(parents=True, exist_ok=True)
        (extra / METADATA_FILE).write_text(
            json.dumps(
                {
                    "pipeline": pipeline,
                    "signatures": sorted(signatures),
                    "serving_base_path": serving_base_path,
                    **(metadata or {}),
                },
                indent=1,
                default=str,
            ),
            encoding="utf-8",
        )
        if warmup:
            with tf.io.TFRecordWriter(str(extra / WARMUP_FILE)) as writer:
                for record in _warmup_records(warmup, pipeline, warmup_count):
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
    if write_config:
        write_models_config(Path(exports_dir), serving_base_path)
    log.info("exported %s", final)
    return final


def write_models_config(
    exports_dir: Path,
    serving_base_path: str = "/models",
    labels: dict[str, dict[str, int]] | None = None,
    batching: BatchingConfig | None = None,
) -> Path:
    """TF Serving's `--model_config_file` listing every exported model under `exports_dir`.

    Each model's `base_path` is the one its newest version recorded (else
    `serving_base_path`). `labels` (model folder -> {label: version}, the registry's
    aliases) become `version_labels`, and the versions they name stay loaded beside the
    newest (`model_version_policy { specific ... }`); without labels TF Serving serves the
    newest version. `batching` (an `ExportConfig.batching`) also writes
    `batching_parameters.txt` beside it. Both files are replaced atomically."""
    labels = labels or {}
    entries = []
    for model_dir in sorted(p for p in exports_dir.iterdir() if p.is_dir()):
        found = versions(model_dir)
        if not found or not re.fullmatch(r"[A-Za-z0-9_.-]+", model_dir.name):
            continue
        recorded = export_metadata(model_dir / str(found[-1])).get("serving_base_path")
        base = (recorded or serving_base_path).rstrip("/")
        entry = (
            "  config {\n"
            f"    name: '{model_dir.name}'\n"
            f"    base_path: '{base}/{model_dir.name}'\n"
            "    model_platform: 'tensorflow'\n"
        )
        named = {k: v for k, v in labels.get(model_dir.name, {}).items() if v in found}
        if named:
            kept = sorted({*named.values(), found[-1]})
            entry += "    model_version_policy {\n      specific {\n"
            entry += "".join(f"        versions: {v}\n" for v in kept)
            entry += "      }\n    }\n"
            for label, version in sorted(named.items()):
                entry += "    version_labels {\n"
                entry += f"      key: '{label}'\n      value: {version}\n    }}\n"
        entries.append(entry + "  }\n")
    if batching is not None:
        _replace(exports_dir / BATCHING_FILE, batching_parameters(batching))
    return _replace(exports_dir / MODELS_CONFIG, "model_config_list {\n" + "".join(entries) + "}\n")


def batching_parameters(batching: BatchingConfig) -> str:
    """TF Serving's `--batching_parameters_file` text (a BatchingParameters proto)."""
    keys = ("max_batch_size", "batch_timeout_micros", "num_batch_threads", "max_enqueued_batches")
    return "".join(f"{key} {{ value: {int(getattr(batching, key))} }}\n" for key in keys)


def _replace(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
