"""Connected digits from FSDD-style recordings, on a small fake recordings folder: which
recordings each split may use, one speaker per utterance, transcripts, pauses, the
isolated-digit manifest, determinism, held-out speakers, fresh draws, the command line."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from pipelines.core.textio import DataError
from pipelines.speech.fsdd import (
    DIGIT_WORDS,
    DigitJoiner,
    build_connected,
    list_recordings,
    main,
    split_recordings,
)
from pipelines.speech.manifest import read_manifest
from pipelines.speech.wavfile import read_wav, write_wav

SPEAKERS = ("ann", "bob", "cy")
INDICES = range(8)  # 0-4 test, 5-7 train/dev
VOCAB = set(" ".join(DIGIT_WORDS))


def code_of(digit: int, speaker: str, index: int) -> int:
    return (digit * len(SPEAKERS) + SPEAKERS.index(speaker)) * len(INDICES) + index


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    """Each recording a constant level that says which one it is (and its own length)."""
    folder = tmp_path_factory.mktemp("fsdd") / "recordings"
    folder.mkdir()
    for digit, speaker, index in itertools.product(range(10), SPEAKERS, INDICES):
        code = code_of(digit, speaker, index)
        write_wav(
            folder / f"{digit}_{speaker}_{index}.wav",
            np.full(300 + code % 50, (code + 10) / 400),
            8000,
        )
    return folder


def segments(path: Path) -> tuple[list[tuple[int, str, int]], list[int], list[int]]:
    """The recordings an utterance joins, the pauses between them and those at its ends."""
    samples, _ = read_wav(path)
    levels = np.round(samples * 400).astype(int)
    runs = [(value, len(list(group))) for value, group in itertools.groupby(levels)]
    table = {
        code_of(d, s, i): (d, s, i) for d, s, i in itertools.product(range(10), SPEAKERS, INDICES)
    }
    used = [table[value - 10] for value, _ in runs if value]
    inner = [n for k, (value, n) in enumerate(runs) if not value and 0 < k < len(runs) - 1]
    ends = [n for k, (value, n) in enumerate(runs) if not value and k in (0, len(runs) - 1)]
    return used, inner, ends


def read_split(dst: Path, split: str):
    manifest = read_manifest(dst / f"{split}.tsv", VOCAB)
    assert manifest.num_skipped == 0
    return manifest.utterances


def test_splits_draw_from_their_own_recordings(recordings, tmp_path):
    counts = build_connected(
        recordings.parent, tmp_path, train=40, dev=12, test=12, noise=0.0, seed=3
    )
    assert counts == {"train": 40, "dev": 12, "test": 12, "test_digits": 150}
    used = {}
    for split in ("train", "dev", "test"):
        utterances = read_split(tmp_path, split)
        assert len(utterances) == counts[split]
        used[split] = set()
        for u in utterances:
            parts, pauses, ends = segments(u.path)
            assert 1 <= len(parts) <= 7
            assert u.transcript == " ".join(DIGIT_WORDS[d] for d, _, _ in parts)
            assert {s for _, s, _ in parts} == {u.extra["speaker"]}
            # Pauses of 50-400 ms between recordings, up to 200 ms at each end.
            assert len(pauses) == len(parts) - 1
            assert all(400 <= n <= 3200 for n in pauses) and all(n <= 1600 for n in ends)
            used[split] |= set(parts)
    assert all(i in range(5) for _, _, i in used["test"])
    assert all(i >= 5 for _, _, i in used["train"] | used["dev"])
    assert not used["train"] & used["dev"]


def test_isolated_digit_manifest_has_every_test_recording(recordings, tmp_path):
    build_connected(recordings, tmp_path, train=2, dev=1, test=1, seed=0)
    utterances = read_split(tmp_path, "test_digits")
    assert len(utterances) == 10 * len(SPEAKERS) * 5
    for u in utterances:
        digit, speaker, index = u.path.stem.split("_")
        assert u.transcript == DIGIT_WORDS[int(digit)] and int(index) < 5
        assert u.extra["speaker"] == speaker and u.path.parent == tmp_path / "digits"


def test_same_seed_same_corpus_and_held_out_speakers(recordings, tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    build_connected(recordings, a, train=10, dev=3, test=3, seed=5)
    build_connected(recordings, b, train=10, dev=3, test=3, seed=5)
    build_connected(recordings, c, train=10, dev=3, test=3, seed=5, test_speakers=["cy"])
    for name in ("train.tsv", "dev.tsv", "train/00007.wav", "test/00002.wav"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "train.tsv").read_bytes() != (c / "train.tsv").read_bytes()
    for split in ("train", "dev"):
        assert {u.extra["speaker"] for u in read_split(c, split)} <= {"ann", "bob"}


def test_dev_holds_out_a_share_of_every_speaker_and_digit(recordings):
    splits = split_recordings(list_recordings(recordings), dev_fraction=0.3, seed=1)
    dev = {(r.speaker, r.digit) for r in splits["dev"]}
    assert dev == set(itertools.product(SPEAKERS, range(10)))
    assert len(splits["dev"]) == 30 and len(splits["train"]) == 60
    assert len(splits["test"]) == 150
    with pytest.raises(ValueError, match="test_speakers: no recordings of zed"):
        split_recordings(list_recordings(recordings), test_speakers=["zed"])


def test_fresh_draws_every_pass(recordings):
    train = split_recordings(list_recordings(recordings))["train"]
    joiner = DigitJoiner(train, max_digits=3, seed=0)
    dataset = joiner.dataset(count=6)
    first = [t.numpy().decode() for _, t in dataset]
    second = [(w.numpy(), t.numpy().decode()) for w, t in dataset]
    assert len(first) == len(second) == 6
    assert first != [t for _, t in second]
    for waveform, transcript in second:
        assert waveform.dtype == np.float32 and 1 <= len(transcript.split()) <= 3
    noisy = DigitJoiner(train, max_digits=2, gap_ms=(100, 100), noise=0.01, seed=0)
    waveform, _, _ = noisy.draw()
    assert np.abs(waveform).max() > 0 and np.std(waveform[:50]) < 0.05


def test_some_utterances_start_on_speech_and_some_pauses_are_exact_zeros(recordings):
    """Trimmed clips and zero-padded audio are what users send: training sees both."""
    train = split_recordings(list_recordings(recordings))["train"]
    joiner = DigitJoiner(train, max_digits=2, gap_ms=(100, 100), noise=0.01, seed=1)
    draws = [joiner.draw()[0] for _ in range(200)]
    bare = sum(w[0] != 0 and np.all(w[:20] == w[0]) for w in draws)  # a recording's level
    silent = sum(w[0] == 0 for w in draws)  # a lead-in of exact zeros
    assert 20 <= bare <= 90 and 10 <= silent <= 80  # about a quarter, a sixth of the starts
    plain = DigitJoiner(train, max_digits=2, noise=0.01, seed=1, digital_silence=0.0, bare_edge=0.0)
    starts = [plain.draw()[0][:20] for _ in range(50)]
    assert not any(w[0] == 0 or np.all(w == w[0]) for w in starts if len(w))


def test_bad_recordings_folder(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        list_recordings(tmp_path / "none")
    (tmp_path / "seven.wav").write_bytes(b"")
    with pytest.raises(DataError, match=r"seven\.wav: not named"):
        list_recordings(tmp_path)


def test_command_line(recordings, tmp_path, capsys):
    assert (
        main(
            [
                str(recordings),
                str(tmp_path / "out"),
                "--train",
                "3",
                "--dev",
                "2",
                "--test",
                "2",
                "--max-digits",
                "2",
                "--test-speakers",
                "cy",
            ]
        )
        == 0
    )
    assert "train: 3" in capsys.readouterr().out
    assert len(read_split(tmp_path / "out", "train")) == 3
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "missing"), str(tmp_path / "x")])
    assert exit_info.value.code == 2
    assert "no such folder" in capsys.readouterr().err


def test_isolated_train_adds_every_training_recording_alone(recordings, tmp_path):
    """The isolated-word condition in training: each training recording once by itself,
    between edges as connected draws have them; dev and test stay as they were."""
    plain, extra = tmp_path / "plain", tmp_path / "extra"
    build_connected(recordings, plain, train=20, dev=4, test=4, noise=0.0, seed=2)
    counts = build_connected(
        recordings, extra, train=20, dev=4, test=4, noise=0.0, seed=2, isolated_train=True
    )
    train_recordings = split_recordings(list_recordings(recordings), seed=2)["train"]
    assert counts["train"] == 20 + len(train_recordings) and counts["dev"] == 4
    for name in ("dev.tsv", "test.tsv", "test/00003.wav"):
        assert (plain / name).read_bytes() == (extra / name).read_bytes()
    singles, connected = [], 0
    for u in read_split(extra, "train"):
        parts, _, ends = segments(u.path)
        assert all(n <= 1600 for n in ends)
        if len(parts) == 1 and u.transcript == DIGIT_WORDS[parts[0][0]]:
            singles.append(parts[0])
        else:
            connected += 1
    # Every training recording alone at least once (a connected draw may hold one digit).
    assert {(r.digit, r.speaker, r.index) for r in train_recordings} <= set(singles)
    assert connected + len(singles) == counts["train"] and connected <= 20
    joiner = DigitJoiner(train_recordings, max_digits=2, seed=0)
    assert len(list(joiner.dataset(count=5, singles=True))) == 5 + len(train_recordings)
