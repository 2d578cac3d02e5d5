"""Reading text data files with errors that name the file and line."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Bad input data; the message names the file and line."""


def read_lines(path: Path) -> list[str]:
    """All lines of a UTF-8 file (no line endings); invalid UTF-8 names file and line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def read_listed_files(lines: list[str], base_dir: Path, what: str) -> list[tuple[Path, bytes]]:
    """(path, bytes) of the file each line names (relative to `base_dir`): batch
    prediction's input. An empty line or a file that cannot be read fails naming the line;
    `what` says what the lines should name ("image", "WAV file")."""
    files = []
    for number, line in enumerate(lines, start=1):
        name = line.strip()
        if not name:
            raise DataError(f"line {number}: empty; expected the path of a {what}")
        path = Path(name).expanduser()
        path = path if path.is_absolute() else Path(base_dir) / path
        try:
            files.append((path, path.read_bytes()))
        except OSError as exc:
            raise DataError(
                f"line {number}: {path}: cannot read {what}: {exc.strerror or exc}"
            ) from exc
    return files
