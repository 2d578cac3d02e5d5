"""SIGHAN bakeoff files: one sentence a line, words separated by whitespace."""

from __future__ import annotations

from pathlib import Path

from pipelines.core.textio import read_lines

# Words after which a clause ends: cutting there never splits a word.
CLAUSE_END = frozenset("。，！？；：,!?;:")


def read_segmented(path: Path) -> list[list[str]]:
    """Sentences as word lists; blank lines skipped; invalid UTF-8 names file and line."""
    return [line.split() for line in read_lines(path) if line.strip()]


def split_clauses(words: list[str], min_words: int = 1) -> list[list[str]]:
    """Cut a sentence after punctuation words into clauses of at least `min_words` words."""
    out, current = [], []
    for word in words:
        current.append(word)
        if word in CLAUSE_END and len(current) >= min_words:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out
