"""`tfpipe run translation` end to end on the bundled synthetic pair, both models: each
learns the sample; the Transformer's export translates raw text (and empty and very long
input) in a fresh process through both signatures; batch prediction; what MLflow records.
The Transformer runs with one shared vocabulary and tied embeddings (the RNN with a
vocabulary a side and its own output layer), so both ways train, export and re-export."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from helpers import DATA, bfloat16_ops, copy_workdir, fresh_signatures, set_args, tfpipe

SAMPLE = DATA / "translation" / "sample"
TINY = [
    "train.verbose=2",
    "train.batch_size=16",
    "train.learning_rate=0.005",
    "train.schedule.warmup_steps=20",
    "model.dropout=0.0",
    "eval.attention_plots=2",
    "export.warmup_requests=2",
]
TINY_TRANSFORMER = [
    *TINY,
    "train.epochs=6",
    "eval.every_epochs=3",
    "model.layers=1",
    "model.width=32",
    "model.heads=2",
    "model.feedforward=64",
    "data.shared_vocab=true",
    "model.tie_embeddings=true",
]
TINY_RNN = [
    *TINY,
    "model.name=rnn_attention",
    "train.epochs=6",
    "train.learning_rate=0.01",
    "eval.every_epochs=0",
    "eval.attention_plots=1",
    "export.warmup_requests=1",
    "model.attention=multiplicative",
    "model.embedding=32",
    "model.units=64",
]

pytestmark = pytest.mark.slow


def _run(tmp_path_factory, name: str, overrides: list[str]):
    workdir = tmp_path_factory.mktemp(name)
    proc = tfpipe("run", "translation", "--workdir", str(workdir), *set_args(overrides))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    scores = dict(re.findall(r"^test_(\w+): ([0-9.]+)$", proc.stdout, re.M))
    return workdir, {k: float(v) for k, v in scores.items()}, proc.stdout


@pytest.fixture(scope="module")
def transformer_run(tmp_path_factory):
    return _run(tmp_path_factory, "translation-transformer", TINY_TRANSFORMER)


def test_transformer_learns_the_sample(transformer_run):
    workdir, scores, stdout = transformer_run
    assert scores["bleu"] > 70 and scores["chrf"] > 80, stdout[-2000:]
    assert "sacreBLEU nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp" in stdout
    assert re.search(r"pairs; vocabulary en\+de \d+ \(shared\)", stdout)
    # Tied: the kept weights hold one token matrix and no output layer.
    weights = workdir / "state" / "translation" / "translation" / "model" / "weights.npz"
    with np.load(weights) as kept:
        names = [k.split(":", 1)[1] for k in kept.files]
    assert [n for n in names if "token" in n] == ["transformer/shared_embedding/tokens/embeddings"]
    assert not [n for n in names if "logits" in n]


def test_export_translates_raw_text_in_a_fresh_process(transformer_run, tmp_path):
    """Raw sentences in, detokenized sentences out, through both signatures; empty input
    gives "" (score 0); input far over `data.max_source_tokens` is cut, and the output
    stays within its bound."""
    workdir, _, _ = transformer_run
    export = workdir / "exports" / "translation" / "1"
    sources = (SAMPLE / "test.en").read_text(encoding="utf-8").splitlines()[:4]
    references = (SAMPLE / "test.de").read_text(encoding="utf-8").splitlines()[:4]
    long_input = " ".join(sources * 40)
    request = {"text": [*sources, "", long_input]}
    result = fresh_signatures(export, {"serving_default": request, "greedy": request}, tmp_path)
    assert result["signatures"] == ["greedy", "serving_default"]
    assert result["inputs"]["serving_default"] == ["text"]
    assert sorted(result["warmup"]) == ["greedy"] * 2 + ["serving_default"] * 2
    for name in ("serving_default", "greedy"):
        out = result["calls"][name]
        translations, scores = out["translation"]["value"], out["score"]["value"]
        assert sum(t == r for t, r in zip(translations, references, strict=False)) >= 3
        assert translations[4] == "" and scores[4] == 0.0
        assert translations[5] and len(translations[5].split()) <= 101
        assert all(s <= 0.0 for s in scores)


def test_reexport_serves_in_bfloat16_what_trained_in_float32(transformer_run, tmp_path):
    """`export.mixed_precision` at re-export: the same weights decode in bfloat16 (the
    graph's arithmetic is bfloat16, the float32 export's is not) and still translate in a
    fresh process; a misspelt policy fails before anything is exported."""
    workdir = copy_workdir(transformer_run[0], tmp_path / "w")
    proc = tfpipe(
        "export",
        "translation",
        "--run",
        "translation",
        "--workdir",
        str(workdir),
        "--set",
        "export.mixed_precision=bfloat16",
    )
    assert proc.returncode != 0 and "export.mixed_precision: 'bfloat16'" in proc.stderr
    proc = tfpipe(
        "export",
        "translation",
        "--run",
        "translation",
        "--workdir",
        str(workdir),
        "--set",
        "export.mixed_precision=mixed_bfloat16",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    exports = workdir / "exports" / "translation"
    assert sorted(p.name for p in exports.iterdir()) == ["1", "2"]
    meta = json.loads((exports / "2" / "assets.extra" / "tfpipelines.json").read_text())
    assert meta["mixed_precision"] == "mixed_bfloat16"
    assert bfloat16_ops(exports / "1") == 0 and bfloat16_ops(exports / "2") > 20
    sources = (SAMPLE / "test.en").read_text(encoding="utf-8").splitlines()[:4]
    references = (SAMPLE / "test.de").read_text(encoding="utf-8").splitlines()[:4]
    out = fresh_signatures(exports / "2", {"serving_default": {"text": [*sources, ""]}}, tmp_path)[
        "calls"
    ]["serving_default"]
    translations = out["translation"]["value"]
    assert sum(t == r for t, r in zip(translations, references, strict=False)) >= 3
    assert translations[4] == ""


def test_predict_writes_a_translation_per_line(transformer_run, tmp_path):
    workdir, _, _ = transformer_run
    lines = (SAMPLE / "test.en").read_text(encoding="utf-8").splitlines()[:3]
    source = tmp_path / "src.txt"
    source.write_text("\n".join([lines[0], "", *lines[1:]]) + "\n", encoding="utf-8")
    out = tmp_path / "hyp.txt"
    proc = tfpipe(
        "predict",
        "translation",
        "--workdir",
        str(workdir),
        "--input",
        str(source),
        "--output",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    hyps = out.read_text(encoding="utf-8").split("\n")[:-1]
    assert len(hyps) == 4 and hyps[1] == "" and all(hyps[i] for i in (0, 2, 3))
    assert all(h.endswith(".") and h[0].isupper() for h in hyps if h)


def test_mlflow_records_bleu_vocabularies_and_attention_maps(transformer_run):
    from mlflow.tracking import MlflowClient

    workdir, _, _ = transformer_run
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("translation").experiment_id])
    for key in ("test_bleu", "test_chrf", "val_bleu", "val_loss", "train_seconds"):
        assert key in run.data.metrics
    # Dev BLEU every third epoch only: epochs 3 and 6 of six.
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_bleu")] == [3, 6]
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/attention_0.png", "plots/attention_1.png"} <= plots
    assets = {a.path for a in client.list_artifacts(run.info.run_id, "model/assets")}
    assert assets == {"model/assets/vocabulary.en-de.txt"}  # data.shared_vocab: one
