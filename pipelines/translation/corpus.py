"""Reading line-aligned parallel corpora: `{split}.{source}` with `{split}.{target}`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pipelines.core.textio import DataError, read_lines


@dataclasses.dataclass
class Parallel:
    """One split: source and target sentences, line by line."""

    sources: list[str]
    targets: list[str]
    files: tuple[Path, Path]

    def __len__(self) -> int:
        return len(self.sources)


def read_parallel(folder: Path, split: str, source: str, target: str) -> Parallel:
    """The split's two files; different line counts fail naming both files."""
    files = (Path(folder) / f"{split}.{source}", Path(folder) / f"{split}.{target}")
    sources, targets = read_lines(files[0]), read_lines(files[1])
    if len(sources) != len(targets):
        raise DataError(
            f"{files[0]} has {len(sources)} lines but {files[1]} has "
            f"{len(targets)}: parallel files must be line-aligned"
        )
    return Parallel([s.strip() for s in sources], [t.strip() for t in targets], files)
