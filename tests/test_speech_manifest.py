"""Speech manifests: valid rows read with their audio's length and rate; every problem an
error naming the manifest and line, or left out and counted with `on_error="skip"`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from pipelines.core.textio import DataError
from pipelines.speech.manifest import read_manifest, transcripts_charset
from pipelines.speech.wavfile import write_wav

VOCAB = set("abcdefghijklmnopqrstuvwxyz' ")
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "speech" / "sample"


def corpus(tmp_path: Path, rows: list[str], header: str = "path\ttranscript\tspeaker") -> Path:
    (tmp_path / "wavs").mkdir(exist_ok=True)
    write_wav(tmp_path / "wavs" / "a.wav", 0.1 * np.ones(8000), 8000)
    write_wav(tmp_path / "wavs" / "b.wav", 0.1 * np.ones(3200), 16000)
    (tmp_path / "wavs" / "bad.wav").write_bytes(b"RIFF....WAVEnothing")
    manifest = tmp_path / "train.tsv"
    manifest.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return manifest


GOOD = ["wavs/a.wav\tseven two  two eight\tann", "wavs/b.wav\t  it's one \tbob"]


def test_reads_valid_rows(tmp_path):
    manifest = read_manifest(corpus(tmp_path, GOOD + [""]), VOCAB)
    first, second = manifest.utterances
    assert first.path == tmp_path / "wavs" / "a.wav"
    assert first.transcript == "seven two two eight"
    assert (first.line, first.frames, first.sample_rate, first.seconds) == (2, 8000, 8000, 1.0)
    assert second.transcript == "it's one" and second.sample_rate == 16000
    assert second.seconds == pytest.approx(0.2)
    assert first.extra == {"speaker": "ann"}
    assert manifest.skipped == {} and manifest.num_skipped == 0
    assert transcripts_charset([manifest]) == sorted(set("seven two eight it's one"))


BAD = [
    ("wavs/missing.wav\tone\tx", "missing file", r"audio file .*missing\.wav not found"),
    ("wavs/bad.wav\tone\tx", "bad wav", r".*bad\.wav is not a readable 16-bit PCM WAV"),
    ("wavs/a.wav\t   \tx", "empty transcript", r"empty transcript"),
    (
        "wavs/a.wav\tone Two\tx",
        "out of vocabulary",
        r"transcript has characters outside the vocabulary: 'T' \(U\+0054\)",
    ),
    ("wavs/a.wav\tone", "bad row", r"2 fields, the header has 3"),
    ("\tone\tx", "bad row", r"empty path"),
]


@pytest.mark.parametrize("row,reason,message", BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_each_problem_names_the_manifest_and_line(tmp_path, row, reason, message):
    path = corpus(tmp_path, [GOOD[0], row, GOOD[1]])
    with pytest.raises(DataError, match=re.escape(f"{path}:3: ") + message):
        read_manifest(path, VOCAB)


def test_the_first_bad_line_is_reported_whatever_the_kind(tmp_path):
    # The audio is checked after the text, but the error is still the earliest line's.
    path = corpus(tmp_path, [GOOD[0], "wavs/missing.wav\tone\tx", "wavs/a.wav\t\tx"])
    with pytest.raises(DataError, match=re.escape(f"{path}:3: ") + "audio file"):
        read_manifest(path, VOCAB)


def test_skip_mode_counts_problems_by_reason(tmp_path):
    path = corpus(tmp_path, [GOOD[0]] + [b[0] for b in BAD] + [GOOD[1], "wavs/bad.wav\tx\ty"])
    manifest = read_manifest(path, VOCAB, on_error="skip")
    assert [u.line for u in manifest.utterances] == [2, 9]
    assert manifest.skipped == {
        "missing file": 1,
        "bad wav": 2,
        "empty transcript": 1,
        "out of vocabulary": 1,
        "bad row": 2,
    }
    assert manifest.num_skipped == 7


def test_without_a_vocabulary_or_audio_check(tmp_path):
    path = corpus(tmp_path, ["wavs/missing.wav\tÜber 42\tx"])
    manifest = read_manifest(path, check_audio=False)
    assert manifest.utterances[0].transcript == "Über 42"
    assert manifest.utterances[0].frames == 0


@pytest.mark.parametrize("header", ["path\ttext", "", "file\ttranscript"])
def test_a_bad_header_always_fails(tmp_path, header):
    path = corpus(tmp_path, GOOD, header=header)
    with pytest.raises(DataError, match=re.escape(f"{path}:1: ")):
        read_manifest(path, VOCAB, on_error="skip")


def test_missing_manifest_and_bad_option(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_manifest(tmp_path / "nope.tsv")
    with pytest.raises(ValueError, match="on_error"):
        read_manifest(corpus(tmp_path, GOOD), on_error="ignore")


def test_the_bundled_sample_reads_cleanly():
    vocabulary = set("zero one two three four five six seven eight nine")
    sizes = {}
    for split in ("train", "dev", "test"):
        manifest = read_manifest(SAMPLE / f"{split}.tsv", vocabulary)
        assert manifest.num_skipped == 0
        assert all(u.sample_rate == 8000 and 0.3 < u.seconds < 2.0 for u in manifest.utterances)
        sizes[split] = len(manifest.utterances)
    assert sizes == {"train": 48, "dev": 12, "test": 12}
