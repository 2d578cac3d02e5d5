"""Speech manifests: a UTF-8 TSV file with a header row naming at least the columns `path`
(a WAV file, relative to the manifest's folder) and `transcript`, then one utterance a line.

Every problem names the manifest and line: a row with the wrong number of fields, a missing
or unreadable WAV file (read by the same header parser as the serving graph), an empty
transcript, a character outside the vocabulary. With `on_error="skip"` such rows are left
out and counted by reason instead.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable
from pathlib import Path

import tensorflow as tf
from tqdm import tqdm

from pipelines.core.textio import DataError, read_lines
from pipelines.speech.audio import wav_info

REQUIRED = ("path", "transcript")
ON_ERROR = ("fail", "skip")
CHECK_BATCH = 256  # WAV files read and checked together


@dataclasses.dataclass
class Utterance:
    path: Path  # absolute: the manifest's folder joined with its `path` field
    transcript: str  # whitespace runs read as one space, ends stripped
    line: int  # in the manifest, counted from 1 (the header is line 1)
    frames: int = 0  # samples per channel (0 when audio was not checked)
    sample_rate: int = 0
    extra: dict[str, str] = dataclasses.field(default_factory=dict)  # the other columns

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


@dataclasses.dataclass
class Manifest:
    path: Path
    utterances: list[Utterance]
    skipped: dict[str, int]  # reason -> rows left out (on_error="skip")

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())


class _Problems:
    """The first problem of each line: raised in line order, or counted by reason."""

    def __init__(self, manifest: Path):
        self.manifest = manifest
        self.found: dict[int, tuple[str, str]] = {}

    def add(self, line: int, reason: str, message: str) -> None:
        self.found.setdefault(line, (reason, message))

    def raise_first(self) -> None:
        if self.found:
            line = min(self.found)
            raise DataError(f"{self.manifest}:{line}: {self.found[line][1]}")

    def counts(self) -> dict[str, int]:
        return dict(collections.Counter(reason for reason, _ in self.found.values()))


_wav_info = tf.function(wav_info, input_signature=[tf.TensorSpec([None], tf.string)])


def _check_audio(rows: list[Utterance], problems: _Problems, desc: str) -> None:
    """Read each row's WAV header (in batches); note missing and unreadable files."""
    for start in tqdm(
        range(0, len(rows), CHECK_BATCH),
        desc=desc,
        unit="batch",
        leave=False,
        disable=len(rows) <= 4 * CHECK_BATCH,
    ):
        batch = rows[start : start + CHECK_BATCH]
        data = []
        for u in batch:
            try:
                data.append(u.path.read_bytes())
            except FileNotFoundError:
                problems.add(u.line, "missing file", f"audio file {u.path} not found")
                data.append(b"")
            except OSError as exc:
                problems.add(u.line, "unreadable file", f"cannot read {u.path}: {exc.strerror}")
                data.append(b"")
        info = {k: v.numpy() for k, v in _wav_info(tf.constant(data, tf.string)).items()}
        for i, u in enumerate(batch):
            if info["ok"][i]:
                u.frames, u.sample_rate = int(info["frames"][i]), int(info["sample_rate"][i])
            else:
                problems.add(
                    u.line, "bad wav", f"{u.path} is not a readable 16-bit PCM WAV file with audio"
                )


def read_manifest(
    path: Path,
    vocabulary: Iterable[str] | None = None,
    on_error: str = "fail",
    check_audio: bool = True,
) -> Manifest:
    """The utterances of a manifest, validated.

    `vocabulary`: the characters a transcript may use (include `" "` for word breaks);
    None accepts any. `check_audio` reads every WAV file's header (and fills `frames` and
    `sample_rate`). `on_error="fail"` raises `DataError` for the first bad line;
    `"skip"` leaves bad lines out and counts them in `Manifest.skipped`, by reason:
    `bad row`, `empty transcript`, `out of vocabulary`, `missing file`, `unreadable file`,
    `bad wav`. A missing or malformed header always raises.
    """
    path = Path(path)
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}, not '{on_error}'")
    lines = read_lines(path)
    if not lines or not lines[0].strip():
        raise DataError(f"{path}:1: no header row (expected columns {', '.join(REQUIRED)})")
    header = [h.strip() for h in lines[0].split("\t")]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DataError(
            f"{path}:1: the header has no column {', '.join(map(repr, missing))} "
            f"(found {', '.join(map(repr, header))})"
        )
    allowed = None if vocabulary is None else set(vocabulary)
    problems = _Problems(path)
    rows: list[Utterance] = []
    for number, text in enumerate(lines[1:], start=2):
        if not text.strip():
            continue
        fields = text.split("\t")
        if len(fields) != len(header):
            problems.add(number, "bad row", f"{len(fields)} fields, the header has {len(header)}")
            continue
        record = dict(zip(header, fields, strict=True))
        transcript = " ".join(record["transcript"].split())
        if not transcript:
            problems.add(number, "empty transcript", "empty transcript")
            continue
        if allowed is not None:
            bad = sorted(set(transcript) - allowed)
            if bad:
                shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in bad)
                problems.add(
                    number,
                    "out of vocabulary",
                    f"transcript has characters outside the vocabulary: {shown}",
                )
                continue
        if not record["path"].strip():
            problems.add(number, "bad row", "empty path")
            continue
        rows.append(
            Utterance(
                path.parent / record["path"].strip(),
                transcript,
                number,
                extra={k: v for k, v in record.items() if k not in REQUIRED},
            )
        )
    if check_audio:
        _check_audio(rows, problems, f"checking {path.name}")
    if on_error == "fail":
        problems.raise_first()
    kept = [u for u in rows if u.line not in problems.found]
    return Manifest(path, kept, problems.counts())


def transcripts_charset(manifests: Iterable[Manifest]) -> list[str]:
    """The sorted characters the manifests' transcripts use (a char vocabulary)."""
    return sorted({c for m in manifests for u in m.utterances for c in u.transcript})
