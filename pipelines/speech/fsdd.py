"""Connected digits from the Free Spoken Digit Dataset (FSDD): utterances of one to seven
recordings of one speaker joined by short pauses, a real sequence task for CTC.

FSDD is `recordings/{digit}_{speaker}_{index}.wav`, 8 kHz 16-bit mono, 50 recordings of
each digit by each speaker. The usual split tests on index 0 to 4: test utterances draw only
from those, training only from index 5 to 49, dev from a share of the training recordings
held out by seed. `test_speakers` keeps speakers out of training and dev altogether.

    python -m pipelines.speech.fsdd SRC DST [--train 8000 --dev 500 --test 1000 ...]

writes `DST/{train,dev,test}/NNNNN.wav`, the manifests `train.tsv`, `dev.tsv`, `test.tsv`
(columns `path`, `transcript`, `speaker`) and `test_digits.tsv`: every index 0-4 recording
alone (copied to `DST/digits/`), transcript the digit's word.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from pipelines.core.textio import DataError
from pipelines.speech.wavfile import read_wav, write_wav

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SAMPLE_RATE = 8000
TEST_INDICES = range(0, 5)
TRAIN_INDICES = range(5, 50)
NAME = re.compile(r"(\d)_([A-Za-z0-9-]+)_(\d+)\.wav")
MANIFEST_HEADER = "path\ttranscript\tspeaker\n"


@dataclasses.dataclass(frozen=True)
class Recording:
    digit: int
    speaker: str
    index: int
    path: Path


def list_recordings(src: Path) -> list[Recording]:
    """The `{digit}_{speaker}_{index}.wav` files of `src` (or of `src/recordings`)."""
    src = Path(src)
    if (src / "recordings").is_dir():
        src = src / "recordings"
    if not src.is_dir():
        raise DataError(f"{src}: no such folder")
    out = []
    for path in sorted(src.glob("*.wav")):
        match = NAME.fullmatch(path.name)
        if not match:
            raise DataError(f"{path}: not named {{digit}}_{{speaker}}_{{index}}.wav")
        out.append(Recording(int(match[1]), match[2], int(match[3]), path))
    if not out:
        raise DataError(f"{src}: no .wav recordings")
    return out


def split_recordings(
    recordings: Sequence[Recording],
    dev_fraction: float = 0.1,
    test_speakers: Sequence[str] = (),
    seed: int = 0,
) -> dict[str, list[Recording]]:
    """Recordings by split: `test` index 0-4 (all speakers); `train` and `dev` index 5-49
    of the other speakers, `dev` a `dev_fraction` share of each (speaker, digit) drawn by
    `seed` (at least one where the share is above 0 and two or more recordings exist)."""
    known = {r.speaker for r in recordings}
    unknown = sorted(set(test_speakers) - known)
    if unknown:
        raise ValueError(
            f"test_speakers: no recordings of {', '.join(unknown)} "
            f"(speakers: {', '.join(sorted(known))})"
        )
    rng = np.random.default_rng(seed)
    groups: dict[tuple[str, int], list[Recording]] = collections.defaultdict(list)
    for r in recordings:
        if r.index in TRAIN_INDICES and r.speaker not in test_speakers:
            groups[(r.speaker, r.digit)].append(r)
    splits: dict[str, list[Recording]] = {
        "train": [],
        "dev": [],
        "test": [r for r in recordings if r.index in TEST_INDICES],
    }
    for key in sorted(groups):
        group = groups[key]
        order = rng.permutation(len(group))
        n_dev = int(round(dev_fraction * len(group)))
        if dev_fraction > 0 and len(group) > 1:
            n_dev = min(max(n_dev, 1), len(group) - 1)
        splits["dev"] += [group[i] for i in order[:n_dev]]
        splits["train"] += [group[i] for i in order[n_dev:]]
    return splits


def list_extra_recordings(
    folders: Sequence[Path], fsdd: Sequence[Recording] = ()
) -> list[Recording]:
    """The recordings of every folder in `folders` (FSDD naming), in order: other speakers'
    (e.g. synthetic ones) for training only. A speaker of `fsdd` among them is refused."""
    known = {r.speaker for r in fsdd}
    out = []
    for folder in folders:
        found = list_recordings(folder)
        shared = sorted(known & {r.speaker for r in found})
        if shared:
            raise DataError(
                f"{folder}: speakers {', '.join(shared)} are FSDD's own "
                "(extra training recordings need speakers of their own)"
            )
        out += found
    return out


class DigitJoiner:
    """Draws connected-digit utterances from a set of single-digit recordings: a speaker,
    1 to `max_digits` of their recordings, pauses of `gap_ms` between (and half that range
    at each end) filled with low noise (standard deviation up to `noise`) or, a
    `digital_silence` share of them, exact zeros. A `bare_edge` share of the utterance ends
    have no pause at all, as a trimmed recording starts: a model that only ever saw speech
    after a noisy lead-in misreads clips that start on the first sample or pad with zeros.

    `draw()` gives one `(waveform float32, transcript, speaker)`; `dataset()` a tf.data
    stream of fresh draws, so training can see new combinations every epoch. `alone`
    recordings (other speakers', e.g. synthetic ones) are never joined: each comes once a
    pass, alone between drawn edges, so that they add voices without taking the connected
    utterances' place.
    """

    def __init__(
        self,
        recordings: Sequence[Recording],
        sample_rate: int = SAMPLE_RATE,
        min_digits: int = 1,
        max_digits: int = 7,
        gap_ms: tuple[float, float] = (50, 400),
        noise: float = 0.002,
        seed: int | Sequence[int] = 0,
        digital_silence: float = 0.25,
        bare_edge: float = 0.25,
        alone: Sequence[Recording] = (),
    ):
        if not recordings:
            raise ValueError("DigitJoiner: no recordings")
        if not 1 <= min_digits <= max_digits:
            raise ValueError(f"digits per utterance: {min_digits} to {max_digits}")
        self.sample_rate = sample_rate
        self.min_digits, self.max_digits = min_digits, max_digits
        self.gap = (int(gap_ms[0] * sample_rate / 1000), int(gap_ms[1] * sample_rate / 1000))
        self.noise = noise
        self.digital_silence, self.bare_edge = digital_silence, bare_edge
        self.rng = np.random.default_rng(seed)
        self.audio: dict[Path, np.ndarray] = {}
        self.by_speaker: dict[str, list[Recording]] = collections.defaultdict(list)
        self.alone = list(alone)
        for r in [*recordings, *self.alone]:
            samples, rate = read_wav(r.path)
            if rate != sample_rate:
                raise DataError(f"{r.path}: {rate} Hz, expected {sample_rate} Hz")
            self.audio[r.path] = samples
        for r in recordings:
            self.by_speaker[r.speaker].append(r)
        self.speakers = sorted(self.by_speaker)

    def _pause(self, low: int, high: int) -> np.ndarray:
        n = int(self.rng.integers(low, high + 1))
        level = self.rng.uniform(0.0, self.noise)
        if self.rng.random() < self.digital_silence:
            return np.zeros(n, np.float32)
        return (self.rng.standard_normal(n) * level).astype(np.float32)

    def _edge(self) -> np.ndarray:
        if self.rng.random() < self.bare_edge:
            return np.zeros(0, np.float32)
        return self._pause(0, self.gap[1] // 2)

    def draw(self) -> tuple[np.ndarray, str, str]:
        speaker = self.speakers[self.rng.integers(len(self.speakers))]
        pool = self.by_speaker[speaker]
        count = int(self.rng.integers(self.min_digits, self.max_digits + 1))
        chosen = [pool[i] for i in self.rng.integers(len(pool), size=count)]
        parts = [self._edge()]
        for i, r in enumerate(chosen):
            if i:
                parts.append(self._pause(*self.gap))
            parts.append(self.audio[r.path])
        parts.append(self._edge())
        transcript = " ".join(DIGIT_WORDS[r.digit] for r in chosen)
        return np.concatenate(parts), transcript, speaker

    def single(self, recording: Recording) -> tuple[np.ndarray, str, str]:
        """`recording` alone between two drawn edges, as an isolated word is served."""
        parts = [self._edge(), self.audio[recording.path], self._edge()]
        return np.concatenate(parts), DIGIT_WORDS[recording.digit], recording.speaker

    def pass_size(self, count: int, singles: bool = False) -> int:
        """Utterances in one pass of `draws(count, singles)`."""
        own = sum(len(v) for v in self.by_speaker.values()) if singles else 0
        return count + own + len(self.alone)

    def draws(self, count: int, singles: bool = False) -> Iterator[tuple[np.ndarray, str, str]]:
        """`count` connected draws and, with `singles`, every recording once alone (the
        `alone` ones always), in a random order."""
        if not singles and not self.alone:  # such corpora's draws stay as they were
            for _ in range(count):
                yield self.draw()
            return
        plan: list[Recording | None] = [None] * count
        if singles:
            plan += [r for speaker in self.speakers for r in self.by_speaker[speaker]]
        plan += self.alone
        for i in self.rng.permutation(len(plan)):
            yield self.draw() if plan[i] is None else self.single(plan[i])

    def _stream(self, count: int | None, singles: bool) -> Iterator[tuple[np.ndarray, str]]:
        if count is None:
            while True:
                yield self.draw()[:2]
        for waveform, transcript, _ in self.draws(count, singles):
            yield waveform, transcript

    def dataset(self, count: int | None = None, singles: bool = False) -> tf.data.Dataset:
        """`(waveform [T] float32, transcript string)` pairs: `count` connected draws per
        pass over the dataset (each pass new draws from where the last stopped; with
        `singles`, also every recording alone), endless with None."""
        return tf.data.Dataset.from_generator(
            lambda: self._stream(count, singles),
            output_signature=(tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.string)),
        )


def _write_split(
    joiner: DigitJoiner, dst: Path, split: str, count: int, singles: bool = False
) -> int:
    folder = dst / split
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    total = joiner.pass_size(count, singles)
    draws = joiner.draws(count, singles)
    for n, (waveform, transcript, speaker) in enumerate(
        tqdm(draws, total=total, desc=f"fsdd {split}", unit="utt")
    ):
        name = f"{split}/{n:05d}.wav"
        write_wav(dst / name, waveform, joiner.sample_rate)
        rows.append(f"{name}\t{transcript}\t{speaker}\n")
    (dst / f"{split}.tsv").write_text(MANIFEST_HEADER + "".join(rows), encoding="utf-8")
    return len(rows)


def _write_digits(recordings: Sequence[Recording], dst: Path) -> None:
    (dst / "digits").mkdir(parents=True, exist_ok=True)
    rows = []
    for r in tqdm(recordings, desc="fsdd digits", unit="file"):
        name = f"digits/{r.path.name}"
        shutil.copyfile(r.path, dst / name)
        rows.append(f"{name}\t{DIGIT_WORDS[r.digit]}\t{r.speaker}\n")
    (dst / "test_digits.tsv").write_text(MANIFEST_HEADER + "".join(rows), encoding="utf-8")


def build_connected(
    src: Path,
    dst: Path,
    train: int = 8000,
    dev: int = 500,
    test: int = 1000,
    min_digits: int = 1,
    max_digits: int = 7,
    gap_ms: tuple[float, float] = (50, 400),
    noise: float = 0.002,
    dev_fraction: float = 0.1,
    test_speakers: Sequence[str] = (),
    seed: int = 0,
    isolated_train: bool = False,
    extra_train: Sequence[Path] = (),
) -> dict[str, int]:
    """Write the connected-digit corpus (see the module doc) from the FSDD folder `src`
    into `dst`; the same arguments give the same files. With `isolated_train`, the training
    manifest also holds every training recording alone (between drawn edges), the
    isolated-word condition. The recordings in the `extra_train` folders (other speakers')
    join the training manifest alone, each once (`DigitJoiner`'s `alone`); dev and test
    stay FSDD's. Returns utterances per manifest."""
    dst = Path(dst)
    fsdd = list_recordings(src)
    splits = split_recordings(fsdd, dev_fraction, test_speakers, seed)
    extra = list_extra_recordings(extra_train, fsdd)
    counts = {"train": train, "dev": dev, "test": test}
    for offset, split in enumerate(("train", "dev", "test")):
        if counts[split] <= 0:
            continue
        if not splits[split]:
            raise DataError(f"{src}: no recordings for the {split} split")
        joiner = DigitJoiner(
            splits[split],
            SAMPLE_RATE,
            min_digits,
            max_digits,
            gap_ms,
            noise,
            seed=[seed, offset],
            alone=extra if split == "train" else (),
        )
        counts[split] = _write_split(
            joiner, dst, split, counts[split], singles=isolated_train and split == "train"
        )
    _write_digits(splits["test"], dst)
    return {**counts, "test_digits": len(splits["test"])}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tfpipe data fsdd-connected",
        description="Connected-digit corpus from FSDD recordings.",
    )
    parser.add_argument("src", type=Path, help="FSDD folder (recordings/ or the wav files)")
    parser.add_argument("dst", type=Path, help="output folder")
    parser.add_argument("--train", type=int, default=8000, help="train utterances")
    parser.add_argument("--dev", type=int, default=500, help="dev utterances")
    parser.add_argument("--test", type=int, default=1000, help="test utterances")
    parser.add_argument("--min-digits", type=int, default=1)
    parser.add_argument("--max-digits", type=int, default=7)
    parser.add_argument("--min-gap-ms", type=float, default=50.0)
    parser.add_argument("--max-gap-ms", type=float, default=400.0)
    parser.add_argument(
        "--noise",
        type=float,
        default=0.002,
        help="largest standard deviation of the noise in pauses",
    )
    parser.add_argument(
        "--dev-fraction",
        type=float,
        default=0.1,
        help="share of training recordings held out for dev",
    )
    parser.add_argument(
        "--test-speakers", default="", help="comma-separated speakers kept out of train and dev"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--isolated-train", action="store_true", help="also train on every training recording alone"
    )
    parser.add_argument(
        "--extra-train",
        type=Path,
        action="append",
        default=[],
        help="a folder of other speakers' recordings (FSDD naming) for training only; repeatable",
    )
    args = parser.parse_args(argv)
    speakers = [s for s in args.test_speakers.split(",") if s]
    try:
        counts = build_connected(
            args.src,
            args.dst,
            args.train,
            args.dev,
            args.test,
            args.min_digits,
            args.max_digits,
            (args.min_gap_ms, args.max_gap_ms),
            args.noise,
            args.dev_fraction,
            speakers,
            args.seed,
            args.isolated_train,
            args.extra_train,
        )
    except (DataError, ValueError) as exc:
        parser.exit(2, f"fsdd-connected: {exc}\n")
    print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
