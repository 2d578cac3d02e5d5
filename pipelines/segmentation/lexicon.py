"""Word lists for the lexicon feature: jieba's dictionary (shipped inside the jieba
package, nothing downloaded) or a word-per-line file of the user's."""

from __future__ import annotations

import importlib.resources
import math
import re
from pathlib import Path

from pipelines.core.textio import DataError, read_lines

CJK_WORD = re.compile(r"^[\u3400-\u9fff]+$")


def load_lexicon(source: str, data_dir: Path, max_word: int) -> dict[str, float]:
    """Words of 2..max_word CJK characters from `source` (jieba | none | file path), each
    with a weight in (0, 1]: log-scaled frequency where the file gives one, else 1."""
    if source in ("", "none"):
        return {}
    if source == "jieba":
        path = Path(str(importlib.resources.files("jieba") / "dict.txt"))
    else:
        path = Path(source) if Path(source).is_absolute() else data_dir / source
    words: dict[str, float] = {}
    for number, line in enumerate(read_lines(path), start=1):
        parts = line.split()
        if not parts:
            continue
        word = parts[0]
        if len(parts) > 1 and not parts[1].isdigit():
            raise DataError(f"{path}:{number}: expected 'word [frequency [tag]]'")
        weight = 1.0
        if len(parts) > 1:
            weight = min(1.0, max(0.05, math.log10(int(parts[1]) + 1) / 5))
        if 2 <= len(word) <= max_word and CJK_WORD.match(word):
            words[word] = max(weight, words.get(word, 0.0))
    return dict(sorted(words.items()))
