"""`tfpipe run speech` end to end on the bundled synthetic sample: it learns the digits, its
export answers WAV bytes (and empty, corrupt, resampled and 60-second ones) in a fresh
process through both signatures, batch prediction and what MLflow records."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from helpers import DATA, b64, copy_workdir, fresh_signatures, set_args, tfpipe

from pipelines.speech.wavfile import read_wav, wav_bytes

pytestmark = pytest.mark.slow

SAMPLE = DATA / "speech" / "sample"
# 28 epochs: the measured run scores test WER 0.10 and CER 0.02 (bars 0.6 and 0.25; an
# untrained model scores 1.0 on both), as the 45 it once ran did with room to spare.
TINY_SPEECH = [
    "train.epochs=28",
    "train.batch_size=8",
    "train.learning_rate=0.005",
    "train.early_stopping_patience=0",
    "train.verbose=2",
    "model.layers=1",
    "model.units=96",
    "model.conv_filters=[96]",
    "model.freq_masks=1",
    "model.freq_width=6",
    "model.time_masks=1",
    "model.time_width=8",
    "export.warmup_requests=2",
]


@pytest.fixture(scope="module")
def speech_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("speech-run")
    proc = tfpipe("run", "speech", "--workdir", str(workdir), *set_args(TINY_SPEECH))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return workdir, proc.stdout


def test_run_learns_the_sample(speech_run):
    _, stdout = speech_run
    scores = dict(re.findall(r"^test_(\w+): ([0-9.]+)$", stdout, re.M))
    assert float(scores["cer"]) < 0.25, stdout[-2000:]
    assert float(scores["wer"]) < 0.6, stdout[-2000:]


def test_export_answers_wav_bytes_in_a_fresh_process(speech_run, tmp_path):
    """Both signatures; an empty, a corrupt and a silent 60-second input give an empty
    transcript, not an error; 16 kHz audio is resampled to the model's 8 kHz."""
    workdir, _ = speech_run
    export = workdir / "exports" / "speech" / "1"
    lines = (SAMPLE / "test.tsv").read_text().splitlines()[1:4]
    files = [SAMPLE / line.split("\t")[0] for line in lines]
    samples, rate = read_wav(files[0])
    upsampled = np.interp(np.arange(len(samples) * 2) / 2, np.arange(len(samples)), samples)
    audio = [f.read_bytes() for f in files] + [
        b"",
        b"RIFF\x00\x00garbage",
        wav_bytes(np.zeros(60 * rate, np.float32), rate),
        wav_bytes(upsampled.astype(np.float32), 2 * rate),
    ]
    request = {"audio": [b64(a) for a in audio]}
    result = fresh_signatures(export, {"serving_default": request, "greedy": request}, tmp_path)
    assert result["signatures"] == ["greedy", "serving_default"]
    assert sorted(result["warmup"]) == ["greedy"] * 2 + ["serving_default"] * 2
    for name in ("serving_default", "greedy"):
        out = result["calls"][name]
        transcripts, valid = out["transcript"]["value"], out["valid_audio"]["value"]
        assert valid == [True, True, True, False, False, True, True]
        assert transcripts[3] == transcripts[4] == "" and transcripts[5] == ""
        assert out["confidence"]["value"][3] == out["confidence"]["value"][4] == 0.0
        assert all(0.0 <= c <= 1.0 for c in out["confidence"]["value"])
        assert transcripts[6] and set(transcripts[6]) <= set("efghinorstuvwxz ")
    # The resampled copy reads as the original does (or within a character or two).
    out = result["calls"]["serving_default"]["transcript"]["value"]
    assert len(set(out[6].split()) ^ set(out[0].split())) <= 2


def test_predict_writes_a_transcript_per_file(speech_run, tmp_path):
    workdir, _ = speech_run
    listing = tmp_path / "wavs.txt"
    rows = (SAMPLE / "test.tsv").read_text().splitlines()[1:6]
    listing.write_text("\n".join(str(SAMPLE / r.split("\t")[0]) for r in rows) + "\n")
    out = tmp_path / "out.txt"
    proc = tfpipe(
        "predict",
        "speech",
        "--workdir",
        str(workdir),
        "--input",
        str(listing),
        "--output",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = out.read_text().split("\n")[:-1]
    assert len(lines) == 5 and any(lines)
    listing.write_text("missing.wav\n")
    proc = tfpipe(
        "predict",
        "speech",
        "--workdir",
        str(workdir),
        "--input",
        str(listing),
        "--output",
        str(out),
    )
    assert proc.returncode == 2 and "line 1:" in proc.stderr and "missing.wav" in proc.stderr


def test_mlflow_records_error_rates_and_the_posteriors_plot(speech_run):
    from mlflow.tracking import MlflowClient

    workdir, _ = speech_run
    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("speech").experiment_id])
    for key in ("test_wer", "test_cer", "val_wer", "train_seconds"):
        assert key in run.data.metrics
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/ctc_posteriors.png" in plots
    assets = {a.path for a in client.list_artifacts(run.info.run_id, "model/assets")}
    assert "model/assets/characters.txt" in assets


def test_bad_manifest_line_fails_the_run_naming_it(tmp_path):
    corpus = tmp_path / "speech" / "bad"
    corpus.mkdir(parents=True)
    (corpus / "train.tsv").write_text("path\ttranscript\nnope.wav\tone\n", encoding="utf-8")
    (corpus / "test.tsv").write_text("path\ttranscript\nnope.wav\tone\n", encoding="utf-8")
    proc = tfpipe(
        "run",
        "speech",
        "--data-dir",
        str(tmp_path),
        "--workdir",
        str(tmp_path / "w"),
        "--set",
        "data.corpus=speech/bad",
    )
    assert proc.returncode == 2
    assert f"{corpus / 'train.tsv'}:2:" in proc.stderr


def test_fsdd_connected_data_tool(tmp_path):
    """`tfpipe data fsdd-connected` on a few fake recordings writes the manifests."""
    src = tmp_path / "recordings"
    src.mkdir()
    rng = np.random.default_rng(0)
    for digit in range(3):
        for index in (0, 5, 6, 7):
            (src / f"{digit}_ann_{index}.wav").write_bytes(
                wav_bytes(rng.normal(0, 0.1, 2000).astype(np.float32), 8000)
            )
    proc = tfpipe(
        "data",
        "fsdd-connected",
        str(src),
        str(tmp_path / "out"),
        "--train",
        "6",
        "--dev",
        "2",
        "--test",
        "2",
        "--max-digits",
        "3",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name, rows in (("train", 6), ("dev", 2), ("test", 2), ("test_digits", 3)):
        lines = (tmp_path / "out" / f"{name}.tsv").read_text().splitlines()
        assert lines[0].split("\t")[:2] == ["path", "transcript"] and len(lines) == rows + 1


def test_reexport_snaps_words_to_the_training_lexicon(speech_run, tmp_path):
    """`serving.snap_to_lexicon` at re-export: every output word is a training word (with
    `serving.pad_ms` on, recorded in the export's metadata)."""
    workdir = copy_workdir(speech_run[0], tmp_path / "w")
    proc = tfpipe(
        "export",
        "speech",
        "--run",
        "speech",
        "--workdir",
        str(workdir),
        "--set",
        "serving.snap_to_lexicon=true",
        "--set",
        "serving.decoder=greedy",
        "--set",
        "serving.pad_ms=100",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    version = workdir / "exports" / "speech" / "2"
    metadata = json.loads((version / "assets.extra" / "tfpipelines.json").read_text())
    assert metadata["serving"]["pad_ms"] == 100
    lexicon = set(
        (workdir / "state" / "speech" / "speech" / "model" / "assets" / "words.txt")
        .read_text()
        .split()
    )
    assert lexicon == {
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
    }
    rows = (SAMPLE / "test.tsv").read_text().splitlines()[1:]
    audio = [b64((SAMPLE / r.split("\t")[0]).read_bytes()) for r in rows]
    result = fresh_signatures(version, {"serving_default": {"audio": audio}}, tmp_path)
    words = {
        w for t in result["calls"]["serving_default"]["transcript"]["value"] for w in t.split()
    }
    assert words and words <= lexicon
