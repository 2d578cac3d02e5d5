"""ATIS/SNIPS split folders as most papers ship them: `seq.in` (words), `seq.out` (one BIO
tag per word) and `label` (the intent), line-aligned.

Every problem is an error naming the file and line (counted from 1); no line is skipped.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pipelines.core.textio import DataError, read_lines

FILES = ("seq.in", "seq.out", "label")


@dataclasses.dataclass(frozen=True)
class Utterance:
    words: tuple[str, ...]
    tags: tuple[str, ...]
    intent: str

    @property
    def text(self) -> str:
        return " ".join(self.words)


def bio_error(tags: list[str] | tuple[str, ...]) -> str | None:
    """Why `tags` is not a valid BIO sequence (`I-x` only after `B-x`/`I-x`), or None."""
    prev = "O"
    for i, tag in enumerate(tags, 1):
        if tag != "O":
            prefix, _, kind = tag.partition("-")
            if prefix not in ("B", "I") or not kind:
                return f"tag {i} '{tag}' is not O, B-type or I-type"
            if prefix == "I" and prev not in (f"B-{kind}", f"I-{kind}"):
                after = "the start" if i == 1 else f"'{prev}'"
                return f"tag {i} '{tag}' follows {after}; I-{kind} must follow B-{kind} or I-{kind}"
        prev = tag
    return None


def read_split(folder: Path) -> list[Utterance]:
    """All utterances of one split folder, validated."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such split folder")
    paths = {name: folder / name for name in FILES}
    lines = {name: read_lines(path) for name, path in paths.items()}
    counts = {name: len(v) for name, v in lines.items()}
    if len(set(counts.values())) > 1:
        longest = max(counts.values())
        short = min(counts, key=counts.get)
        long_ = max(counts, key=counts.get)
        raise DataError(
            f"{paths[short]}:{counts[short] + 1}: missing line; {short} has {counts[short]} "
            f"lines but {long_} has {longest} ({', '.join(f'{k}={v}' for k, v in counts.items())})"
        )
    out = []
    for n, (text, tag_line, label) in enumerate(
        zip(lines["seq.in"], lines["seq.out"], lines["label"], strict=True), 1
    ):
        words, tags, intent = text.split(), tag_line.split(), label.strip()
        if not words:
            raise DataError(f"{paths['seq.in']}:{n}: empty utterance")
        if len(words) != len(tags):
            raise DataError(
                f"{paths['seq.out']}:{n}: {len(tags)} tags for {len(words)} words of "
                f"{paths['seq.in']}:{n}"
            )
        problem = bio_error(tags)
        if problem:
            raise DataError(f"{paths['seq.out']}:{n}: {problem}")
        if not intent:
            raise DataError(f"{paths['label']}:{n}: empty intent")
        if len(intent.split()) > 1:
            raise DataError(f"{paths['label']}:{n}: intent '{intent}' contains whitespace")
        out.append(Utterance(tuple(words), tuple(tags), intent))
    return out
