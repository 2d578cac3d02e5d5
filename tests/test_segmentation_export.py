"""The exported SavedModel, loaded and called as TF Serving would: in a fresh process that
never imports this project, by signature name, with raw strings in."""

import json
import subprocess
import sys

import pytest
from helpers import copy_workdir, fresh_signatures, subprocess_env, tfpipe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.core.config import ConfigError
from pipelines.core.trained_model import TrainedModelError, find_trained_model, load_config
from pipelines.segmentation.task import SegmentationTask

pytestmark = pytest.mark.slow

FRESH_CHECK = r"""
import json, sys
import tensorflow as tf
import tensorflow_text  # the tf-text ops TF Serving links in
from tensorflow_serving.apis import prediction_log_pb2

path = sys.argv[1]
signature = tf.saved_model.load(path).signatures["serving_default"]
inputs = signature.structured_input_signature[1]
out = signature(text=tf.constant(["他们在北京参观博物馆。", "", "   ", "2001年abc😀"]))
warm = []
for record in tf.data.TFRecordDataset(path + "/assets.extra/tf_serving_warmup_requests"):
    log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
    request = log.predict_log.request
    result = signature(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
    warm.append([request.model_spec.name, request.model_spec.signature_name,
                 result["segmented"].numpy()[0].decode()])
print(json.dumps({
    "inputs": {k: v.dtype.name for k, v in inputs.items()},
    "outputs": sorted(out),
    "segmented": [s.decode() for s in out["segmented"].numpy()],
    "words_shape": out["words"].shape.as_list(),
    "warmup": warm,
    "project_imported": any(m.split(".")[0] in ("pipelines", "tfmodels") for m in sys.modules),
}))
"""


def test_export_layout_and_models_config(segmentation_run):
    exports = segmentation_run / "exports"
    version = exports / "segmentation" / "1"
    assert (version / "saved_model.pb").is_file()
    assert (version / "variables").is_dir()
    assert (version / "assets.extra" / "tf_serving_warmup_requests").stat().st_size > 0
    assert not [p for p in (exports / "segmentation").iterdir() if p.name.startswith(".tmp")]
    config = (exports / "models.config").read_text()
    assert "name: 'segmentation'" in config and "base_path: '/models/segmentation'" in config


def test_fresh_process_calls_serving_default(segmentation_run, tmp_path):
    version = segmentation_run / "exports" / "segmentation" / "1"
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_CHECK, str(version)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["project_imported"] is False
    assert result["inputs"] == {"text": "string"}
    assert result["outputs"] == ["segmented", "words"]
    first, empty, blank, mixed = result["segmented"]
    assert first.replace(" ", "") == "他们在北京参观博物馆。"
    assert "北京" in first.split(" ")  # the sample corpus teaches this word
    assert empty == "" and blank == ""
    assert mixed.replace(" ", "") == "2001年abc😀"
    assert result["words_shape"][0] == 4
    assert len(result["warmup"]) == 3
    assert all(
        name == "segmentation" and sig == "serving_default" and seg
        for name, sig, seg in result["warmup"]
    )


@pytest.fixture(scope="module")
def serving_signature(segmentation_run):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    path = segmentation_run / "exports" / "segmentation" / "1"
    return tf.saved_model.load(str(path)).signatures["serving_default"]


def _whitespace_free(text: str) -> str:
    return "".join(text.split())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.text(
                alphabet="中国人民北京的了是在0123456789abcXYZ，。！？ \t\u3000😀🇨🇳", max_size=60
            ),
            st.just(""),
            st.just("   \n\t"),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_words_spell_the_input_without_whitespace(serving_signature, texts):
    import tensorflow as tf

    out = serving_signature(text=tf.constant([t.encode("utf-8") for t in texts]))
    words = out["words"].numpy()
    segmented = out["segmented"].numpy()
    for i, text in enumerate(texts):
        row = [w.decode("utf-8") for w in words[i] if w]
        assert "".join(row) == _whitespace_free(text)
        assert segmented[i].decode("utf-8") == " ".join(row)


def test_long_input(serving_signature):
    import tensorflow as tf

    text = ("我们在北京参观博物馆，" * 500)[:5000]
    out = serving_signature(text=tf.constant([text, "中"]))
    assert "".join(w.decode() for w in out["words"].numpy()[0] if w) == text


def test_predict_keeps_every_line_in_order(segmentation_run, tmp_path):
    lines = ["他们在北京参观博物馆。", "", "今天我们学习技术。", "   ", "abc", "好"] * 50
    source = tmp_path / "in.txt"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    target = tmp_path / "out" / "segmented.txt"
    proc = tfpipe(
        "predict",
        "segmentation",
        "--input",
        str(source),
        "--output",
        str(target),
        "--workdir",
        str(segmentation_run),
        "--batch-size",
        "64",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    answers = target.read_text(encoding="utf-8").split("\n")
    assert answers[-1] == ""
    answers = answers[:-1]
    assert len(answers) == len(lines)
    for line, answer in zip(lines, answers, strict=True):
        assert answer.replace(" ", "") == _whitespace_free(line)


def test_predict_rejects_bad_utf8_naming_the_line(segmentation_run, tmp_path):
    source = tmp_path / "bad.txt"
    source.write_bytes(b"ok\n\xff\xfe\n")
    proc = tfpipe(
        "predict",
        "segmentation",
        "--input",
        str(source),
        "--output",
        str(tmp_path / "o.txt"),
        "--workdir",
        str(segmentation_run),
    )
    assert proc.returncode == 2
    assert "bad.txt:2: not valid UTF-8" in proc.stderr
    assert not (tmp_path / "o.txt").exists()


def test_reexport_by_run_name_with_a_changed_separator(
    segmentation_run, serving_signature, tmp_path, monkeypatch
):
    """`tfpipe export --run NAME` writes version 2 from the kept model, without training:
    the same words as version 1 (the trained weights, not fresh ones; Keras' LSTM layers
    instead of the fused kernel), joined as `serving.separator` now says; the start is
    quiet; model keys cannot change."""
    import tensorflow as tf

    workdir = copy_workdir(segmentation_run, tmp_path / "w")
    proc = tfpipe(
        "export",
        "segmentation",
        "--run",
        "segmentation",
        "--workdir",
        str(workdir),
        "--set",
        "serving.separator=/",
        "--set",
        "serving.fused_lstm=false",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    version = workdir / "exports" / "segmentation" / "2"
    assert f"export: {version}" in proc.stdout
    assert "Epoch" not in proc.stdout  # nothing trained
    for noise in ("I0000", "cuda", "absl::InitializeLog", "oneDNN"):
        assert noise not in proc.stderr, proc.stderr[-2000:]

    texts = ["他们在北京参观博物馆。", "今天我们学习技术。"]
    result = fresh_signatures(version, {"serving_default": {"text": texts}}, tmp_path)
    out = result["calls"]["serving_default"]
    before = serving_signature(text=tf.constant(texts))["words"].numpy()
    for row, old, segmented in zip(
        out["words"]["value"], before, out["segmented"]["value"], strict=True
    ):
        words = [w for w in row if w]
        assert words == [w.decode() for w in old if w] and len(words) > 1
        assert segmented == "/".join(words)
    assert result["warmup"] == ["serving_default"] * 3

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # Refusals (the CLI turns both into exit status 2 and this message).
    kept, _ = find_trained_model("segmentation", "segmentation", workdir, tmp_path / "dl")
    with pytest.raises(ConfigError, match="'model.units' cannot change at re-export"):
        load_config(SegmentationTask, kept, ["model.units=8"])
    with pytest.raises(TrainedModelError, match="no trained model 'nosuchrun'"):
        find_trained_model("segmentation", "nosuchrun", workdir, tmp_path / "dl")
