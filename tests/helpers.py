"""Helpers for tests: running the real CLI in a fresh process, tiny configs."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"

# Small enough to train in seconds, big enough to learn the sample corpus.
TINY_SEGMENTATION = [
    "train.epochs=3",
    "train.batch_size=32",
    "train.verbose=2",
    "model.char_dim=32",
    "model.bigram_dim=16",
    "model.units=32",
    "model.layers=1",
    "model.projection=16",
    "export.warmup_requests=3",
]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def tfpipe(
    *args: str, env: dict[str, str] | None = None, timeout: int = 600, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """Run the real CLI in a fresh process (`python -m pipelines`)."""
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args],
        capture_output=True,
        text=True,
        env=env or subprocess_env(),
        timeout=timeout,
        cwd=cwd or ROOT,
    )


def latest_checkpoint_epoch(checkpoint: Path) -> int:
    """The epoch of a run's newest checkpoint (0 while there is none): when to kill it."""
    try:
        name = (checkpoint / "latest").read_text().strip()
        return json.loads((checkpoint / name / "state.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def set_args(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def tiny_bert_preset(folder: Path, words: list[str], layers: int = 2, dim: int = 16) -> Path:
    """A randomly initialised BERT-style keras-hub preset (backbone and WordPiece
    tokenizer) written to `folder`: what `model.pretrained` reads, small enough for tests."""
    import keras_hub

    vocabulary = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        *words,
        *(f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"),
        *"abcdefghijklmnopqrstuvwxyz0123456789'",
    ]
    vocabulary = list(dict.fromkeys(vocabulary))
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary),
        num_layers=layers,
        num_heads=2,
        hidden_dim=dim,
        intermediate_dim=2 * dim,
        max_sequence_length=64,
    )
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True)
    backbone.save_to_preset(str(folder))
    tokenizer.save_to_preset(str(folder))
    return folder


# Loads exports as TF Serving would (no project code), calls the signatures asked for with
# the given raw inputs, replays every warm-up request through the signature it names, and
# prints what came back as JSON: one result per (export, requests) job, in one process.
FRESH_SIGNATURES = r"""
import base64, json, sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # the tf-text ops TF Serving links in
from tensorflow_serving.apis import prediction_log_pb2

with open(sys.argv[1], encoding="utf-8") as f:
    jobs = json.load(f)

def plain(value):
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value.item() if isinstance(value, np.generic) else value

def tensor(values):
    if values and isinstance(values[0], dict):  # {"b64": ...}: raw bytes
        return tf.constant([base64.b64decode(v["b64"]) for v in values])
    return tf.constant(values)

def check(path, requests):
    loaded = tf.saved_model.load(path)
    calls = {}
    for name, inputs in requests.items():
        out = loaded.signatures[name](**{k: tensor(v) for k, v in inputs.items()})
        calls[name] = {k: {"shape": v.shape.as_list(), "value": plain(v.numpy())}
                       for k, v in out.items()}
    warm = []
    for record in tf.data.TFRecordDataset(path + "/assets.extra/tf_serving_warmup_requests"):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        signature = loaded.signatures[request.model_spec.signature_name]
        signature(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
        warm.append(request.model_spec.signature_name)
    return {
        "signatures": sorted(loaded.signatures),
        "inputs": {n: sorted(s.structured_input_signature[1])
                   for n, s in loaded.signatures.items()},
        "calls": calls,
        "warmup": warm,
    }

results = [check(path, requests) for path, requests in jobs]
imported = any(m.split(".")[0] in ("pipelines", "tfmodels") for m in sys.modules)
print(json.dumps([{**r, "project_imported": imported} for r in results]))
"""


def fresh_signatures(export_dir: Path, requests: dict, cwd: Path) -> dict:
    """Call an export's signatures in a fresh Python process that never imports this
    project (see FRESH_SIGNATURES); bytes inputs go as `{"b64": ...}`."""
    return fresh_signatures_of([(export_dir, requests)], cwd)[0]


def fresh_signatures_of(jobs: list[tuple[Path, dict]], cwd: Path) -> list[dict]:
    """`fresh_signatures` of several exports, in one fresh process."""
    import json
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=cwd, delete=False) as f:
        # A file: requests can exceed a command line's limit.
        json.dump([[str(path), requests] for path, requests in jobs], f)
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_SIGNATURES, f.name],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(r["project_imported"] is False for r in results)
    return results


def b64(data: bytes) -> dict:
    import base64

    return {"b64": base64.b64encode(data).decode("ascii")}


def copy_workdir(workdir: Path, target: Path) -> Path:
    """A copy of a run's workdir (its MLflow store, artifacts and exports), so a test can
    add export versions without changing what other tests of the same fixture see: the
    copied store's runs keep their artifacts in the copy, not in the original."""
    import shutil
    import sqlite3

    shutil.copytree(workdir, target)
    old, new = (Path(p).resolve().as_uri() + "/" for p in (workdir, target))
    with contextlib.closing(sqlite3.connect(target / "mlflow.db")) as db, db:
        db.execute(
            "UPDATE experiments SET artifact_location = replace(artifact_location, ?, ?)",
            (old, new),
        )
        db.execute("UPDATE runs SET artifact_uri = replace(artifact_uri, ?, ?)", (old, new))
    return target


def bfloat16_ops(export: Path) -> int:
    """How many of a SavedModel's graph nodes compute in bfloat16 (their `T` attribute)."""
    from tensorflow.core.protobuf import saved_model_pb2

    bfloat16 = 14  # DataType DT_BFLOAT16
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(export) / "saved_model.pb").read_bytes())
    graph = proto.meta_graphs[0].graph_def
    nodes = [*graph.node, *(n for f in graph.library.function for n in f.node_def)]
    return sum(1 for n in nodes if n.attr["T"].type == bfloat16)
