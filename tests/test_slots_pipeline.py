"""`tfpipe run slots` end to end on the bundled sample, its export called in a fresh process
that never imports this project, batch prediction, and what MLflow records."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from helpers import (
    DATA,
    copy_workdir,
    fresh_signatures_of,
    set_args,
    subprocess_env,
    tfpipe,
    tiny_bert_preset,
)

pytestmark = pytest.mark.slow

# The default model (narrower ones learn the sample much more slowly), stopped early.
TINY_SLOTS = [
    "train.epochs=10",
    "train.early_stopping_patience=2",
    "train.verbose=2",
    "export.warmup_requests=3",
]

ATIS_EXAMPLE = "i want to fly from baltimore to dallas round trip"

FRESH_CHECK = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # the tf-text ops TF Serving links in

signature = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
texts = json.loads(sys.argv[2])
out = signature(text=tf.constant(texts))
rows = []
for i in range(len(texts)):
    tokens = [t.decode() for t in out["tokens"].numpy()[i] if t]
    rows.append({
        "tokens": tokens,
        "slots": [s.decode() for s in out["slots"].numpy()[i]],
        "intent": out["intent"].numpy()[i].decode(),
        "probability": float(out["intent_probability"].numpy()[i]),
        "entities": out["entities"].numpy()[i].decode(),
    })
print(json.dumps({
    "inputs": {k: v.dtype.name for k, v in signature.structured_input_signature[1].items()},
    "outputs": sorted(out),
    "rows": rows,
    "project_imported": any(m.split(".")[0] in ("pipelines", "tfmodels", "keras_hub")
                           for m in sys.modules),
}))
"""


def bio_ok(tags: list[str]) -> bool:
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and prev not in ("B-" + tag[2:], "I-" + tag[2:]):
            return False
        prev = tag
    return True


@pytest.fixture(scope="module")
def slots_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slots-run")
    proc = tfpipe("run", "slots", "--workdir", str(workdir), *set_args(TINY_SLOTS))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return workdir, proc.stdout


def fresh_call(version, texts, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_CHECK, str(version), json.dumps(texts)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_run_learns_the_sample(slots_run):
    _, stdout = slots_run
    scores = dict(re.findall(r"^test_(\w+): ([0-9.]+)$", stdout, re.M))
    # The sample's test split has cities train never shows; a broken model scores far lower.
    assert float(scores["slot_f1"]) > 0.85, stdout[-2000:]
    assert float(scores["intent_accuracy"]) > 0.9
    assert 0 < float(scores["sentence_accuracy"]) <= 1


def test_export_answers_in_a_fresh_process(slots_run, tmp_path):
    workdir, _ = slots_run
    version = workdir / "exports" / "slots" / "1"
    texts = [
        ATIS_EXAMPLE,
        "",
        "   ",
        "Show me FARES from Xyzzyville to Qwertyton on Monday",
        "zzz qqq 12345 ÄÖÜ",
    ]
    result = fresh_call(version, texts, tmp_path)
    assert result["project_imported"] is False
    assert result["inputs"] == {"text": "string"}
    assert result["outputs"] == ["entities", "intent", "intent_probability", "slots", "tokens"]
    rows = result["rows"]
    intents = set((DATA / "slots" / "sample" / "train" / "label").read_text().split())
    for text, row in zip(texts, rows, strict=True):
        n = len(text.split())
        assert row["tokens"] == text.split()
        assert len([s for s in row["slots"] if s]) == n  # one label per token, padding ""
        assert bio_ok(row["slots"][:n])
        assert row["intent"] in intents and 0 < row["probability"] <= 1
    example = rows[0]
    assert len(example["slots"]) == 10
    # "baltimore" is not in the sample vocabulary: the characters and context tag it.
    assert "fromloc.city_name=baltimore" in example["entities"]
    assert "toloc.city_name=dallas" in example["entities"]
    assert rows[1]["entities"] == rows[2]["entities"] == ""
    # Original spelling is kept in tokens and entity values.
    assert "Xyzzyville" in rows[3]["tokens"]


def test_crf_ensemble_with_multi_intent_trains_and_exports_valid_bio(tmp_path):
    """The other heads end to end: two CRF taggers trained side by side with one sigmoid
    per single intent, averaged in the export, which a fresh process calls."""
    workdir = tmp_path / "w"
    proc = tfpipe(
        "run",
        "slots",
        "--workdir",
        str(workdir),
        *set_args(
            [
                *TINY_SLOTS,
                "train.epochs=4",
                "model.crf=true",
                "model.ensemble=2",
                "model.multi_intent=true",
            ]
        ),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    scores = dict(re.findall(r"^test_(\w+): ([0-9.]+)$", proc.stdout, re.M))
    assert float(scores["slot_f1"]) > 0.6, proc.stdout[-2000:]
    assert float(scores["intent_accuracy"]) > 0.8, proc.stdout[-2000:]
    texts = [
        ATIS_EXAMPLE,
        "",
        "fares from denver to boston",
        "list flights and fares from boston to denver",
    ]
    rows = fresh_call(workdir / "exports" / "slots" / "1", texts, tmp_path)["rows"]
    for text, row in zip(texts, rows, strict=True):
        n = len(text.split())
        assert len([s for s in row["slots"] if s]) == n and bio_ok(row["slots"][:n])
        assert 0 < row["probability"] <= 1
    vocab = (workdir / "state" / "slots").glob("*/model/assets/intents.txt")
    assert "atis_flight#atis_airfare" not in next(vocab).read_text()  # single intents only
    # A multi-intent question gets both intents, in either order.
    assert sorted(rows[3]["intent"].split("#")) == ["atis_airfare", "atis_flight"]


def test_pretrained_encoder_features_train_and_export_text_in_labels_out(tmp_path):
    """A (tiny, random) BERT-style preset as `model.pretrained`: its WordPiece ids are made
    in the exported graph, which a fresh process without keras-hub calls with raw text."""
    preset = tiny_bert_preset(tmp_path / "bert", ["flights", "from", "to", "boston", "denver"])
    workdir = tmp_path / "w"
    proc = tfpipe(
        "run",
        "slots",
        "--workdir",
        str(workdir),
        *set_args(
            [
                *TINY_SLOTS,
                "train.epochs=4",
                f"model.pretrained={preset}",
                "model.pretrained_layers=1",
            ]
        ),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    scores = dict(re.findall(r"^test_(\w+): ([0-9.]+)$", proc.stdout, re.M))
    assert float(scores["slot_f1"]) > 0.5, proc.stdout[-2000:]
    texts = [ATIS_EXAMPLE, "", "Flights FROM Boston to Xyzzyville's airport 1230pm"]
    result = fresh_call(workdir / "exports" / "slots" / "1", texts, tmp_path)
    assert result["project_imported"] is False
    for text, row in zip(texts, result["rows"], strict=True):
        n = len(text.split())
        assert row["tokens"] == text.split()
        assert len([s for s in row["slots"] if s]) == n and bio_ok(row["slots"][:n])
        assert 0 < row["probability"] <= 1


def test_predict_writes_one_line_per_input_line(slots_run, tmp_path):
    workdir, _ = slots_run
    lines = [ATIS_EXAMPLE, "", "show me flights from denver to boston", "  ", "coach"]
    src = tmp_path / "seq.in"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "pred.txt"
    proc = tfpipe(
        "predict",
        "slots",
        "--input",
        str(src),
        "--output",
        str(out),
        "--workdir",
        str(workdir),
        "--batch-size",
        "2",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = out.read_text(encoding="utf-8").split("\n")
    assert written[-1] == ""
    written = written[:-1]
    assert len(written) == len(lines)
    for line, answer in zip(lines, written, strict=True):
        labels, intent = answer.split("\t")
        assert len(labels.split()) == len(line.split())
        assert bio_ok(labels.split()) and intent
    assert written[1].startswith("\t")


def test_mlflow_records_metrics_report_and_confusion_matrix(slots_run):
    from mlflow.tracking import MlflowClient

    workdir, _ = slots_run
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    experiment = client.get_experiment_by_name("slots")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    for key in ("test_slot_f1", "test_intent_accuracy", "test_sentence_accuracy"):
        assert key in run.data.metrics
    history = client.get_metric_history(run.info.run_id, "val_slot_f1")
    assert len(history) >= 2  # logged per epoch
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/intent_confusion.png", "plots/slot_report.txt"} <= plots
    vocab = {a.path for a in client.list_artifacts(run.info.run_id, "model/assets")}
    assert {f"model/assets/{n}.txt" for n in ("words", "chars", "tags", "intents")} <= vocab


def test_bad_corpus_fails_naming_file_and_line(tmp_path):
    folder = tmp_path / "slots" / "bad" / "train"
    folder.mkdir(parents=True)
    (folder / "seq.in").write_text("fly to boston\nshow fares\n", encoding="utf-8")
    (folder / "seq.out").write_text("O O B-to\nO I-fare\n", encoding="utf-8")
    (folder / "label").write_text("flight\nairfare\n", encoding="utf-8")
    proc = tfpipe(
        "run",
        "slots",
        "--data-dir",
        str(tmp_path),
        "--workdir",
        str(tmp_path / "w"),
        "--set",
        "data.corpus=bad",
    )
    assert proc.returncode == 2
    assert f"{folder / 'seq.out'}:2: tag 2 'I-fare' follows 'O'" in proc.stderr


def test_reexport_by_run_id_adds_the_top_intents(slots_run, tmp_path):
    """`tfpipe export --run RUN_ID --set serving.top_intents=3`: version 2 answers with the
    three most probable intents, most probable first, and otherwise as version 1; MLflow
    records the new version on the run."""
    from mlflow.tracking import MlflowClient

    workdir = copy_workdir(slots_run[0], tmp_path / "w")
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("slots").experiment_id])
    proc = tfpipe(
        "export",
        "slots",
        "--run",
        run.info.run_id,
        "--workdir",
        str(workdir),
        "--set",
        "serving.top_intents=3",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    texts = [ATIS_EXAMPLE, "show me flights to boston", ""]
    request = {"serving_default": {"text": texts}}
    new, old = fresh_signatures_of(
        [
            (workdir / "exports" / "slots" / "2", request),
            (workdir / "exports" / "slots" / "1", request),
        ],
        tmp_path,
    )
    new, old = new["calls"]["serving_default"], old["calls"]["serving_default"]
    assert "top_intents" not in old
    assert new["top_intents"]["shape"] == [3, 3]
    for key in ("slots", "intent", "entities"):
        assert new[key]["value"] == old[key]["value"]
    for intents, probs, intent in zip(
        new["top_intents"]["value"],
        new["top_intent_probabilities"]["value"],
        new["intent"]["value"],
        strict=True,
    ):
        assert intents[0] == intent and probs == sorted(probs, reverse=True)
    tags = client.get_run(run.info.run_id).data.tags
    assert tags["export_version"] == "2"
    assert tags["export_v2_overrides"] == "serving.top_intents=3"
