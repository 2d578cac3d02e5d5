"""The ATIS/SNIPS split reader: valid folders read, every problem an error naming the file
and line, nothing dropped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.core.textio import DataError
from pipelines.slots.reader import bio_error, read_split

GOOD_IN = ["i want to fly from new york to dallas", "show delta flights", "cheapest fare"]
GOOD_OUT = ["O O O O O B-from I-from O B-to", "O B-airline O", "B-cost O"]
GOOD_LABEL = ["flight", "flight", "airfare"]


def write(folder: Path, seq_in, seq_out, label, trailing_newline: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    end = "\n" if trailing_newline else ""
    for name, lines in (("seq.in", seq_in), ("seq.out", seq_out), ("label", label)):
        (folder / name).write_text("\n".join(lines) + end, encoding="utf-8")
    return folder


def test_reads_a_valid_split(tmp_path):
    utts = read_split(write(tmp_path / "train", GOOD_IN, GOOD_OUT, GOOD_LABEL))
    assert len(utts) == 3
    assert utts[0].words[5:7] == ("new", "york")
    assert utts[0].tags[5:7] == ("B-from", "I-from")
    assert [u.intent for u in utts] == GOOD_LABEL
    assert utts[1].text == "show delta flights"


def test_snips_style_trailing_spaces_and_missing_final_newline(tmp_path):
    folder = write(
        tmp_path / "dev",
        [s + " " for s in GOOD_IN],
        [s + " " for s in GOOD_OUT],
        GOOD_LABEL,
        trailing_newline=False,
    )
    assert [u.words for u in read_split(folder)] == [tuple(s.split()) for s in GOOD_IN]


def test_word_and_tag_counts_differ(tmp_path):
    out = list(GOOD_OUT)
    out[1] = "O B-airline"
    folder = write(tmp_path / "s", GOOD_IN, out, GOOD_LABEL)
    with pytest.raises(DataError, match=re.escape(f"{folder / 'seq.out'}:2: 2 tags for 3 words")):
        read_split(folder)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("O I-airline O", "tag 2 'I-airline' follows 'O'"),
        ("I-airline O O", "tag 1 'I-airline' follows the start"),
        ("B-to I-airline O", "tag 2 'I-airline' follows 'B-to'"),
        ("O X-airline O", "tag 2 'X-airline' is not O, B-type or I-type"),
        ("O B- O", "tag 2 'B-' is not O, B-type or I-type"),
        ("O airline O", "tag 2 'airline' is not O"),
    ],
)
def test_invalid_bio_names_file_line_and_tag(tmp_path, bad, message):
    out = list(GOOD_OUT)
    out[1] = bad
    folder = write(tmp_path / "s", GOOD_IN, out, GOOD_LABEL)
    with pytest.raises(DataError) as err:
        read_split(folder)
    assert str(err.value).startswith(f"{folder / 'seq.out'}:2: ")
    assert message in str(err.value)


@pytest.mark.parametrize("short", ["seq.in", "seq.out", "label"])
def test_files_of_different_lengths(tmp_path, short):
    lines = {"seq.in": GOOD_IN, "seq.out": GOOD_OUT, "label": GOOD_LABEL}
    lines[short] = lines[short][:2]
    folder = write(tmp_path / "s", lines["seq.in"], lines["seq.out"], lines["label"])
    with pytest.raises(DataError, match=re.escape(f"{folder / short}:3: missing line")):
        read_split(folder)


def test_extra_blank_line_is_not_dropped(tmp_path):
    folder = write(tmp_path / "s", GOOD_IN + [""], GOOD_OUT + [""], GOOD_LABEL + ["flight"])
    with pytest.raises(DataError, match=re.escape(f"{folder / 'seq.in'}:4: empty utterance")):
        read_split(folder)


def test_empty_and_spaced_intents(tmp_path):
    folder = write(tmp_path / "a", GOOD_IN, GOOD_OUT, ["flight", " ", "airfare"])
    with pytest.raises(DataError, match=re.escape(f"{folder / 'label'}:2: empty intent")):
        read_split(folder)
    folder = write(tmp_path / "b", GOOD_IN, GOOD_OUT, ["flight", "flight", "air fare"])
    with pytest.raises(DataError, match=re.escape(f"{folder / 'label'}:3: intent 'air fare'")):
        read_split(folder)


def test_invalid_utf8_names_file_and_line(tmp_path):
    folder = write(tmp_path / "s", GOOD_IN, GOOD_OUT, GOOD_LABEL)
    (folder / "seq.in").write_bytes(b"fine line\nbad \xff byte\nthird\n")
    with pytest.raises(DataError, match=re.escape(f"{folder / 'seq.in'}:2: not valid UTF-8")):
        read_split(folder)


def test_missing_file_and_folder(tmp_path):
    folder = write(tmp_path / "s", GOOD_IN, GOOD_OUT, GOOD_LABEL)
    (folder / "label").unlink()
    with pytest.raises(DataError, match=re.escape(f"{folder / 'label'}: no such file")):
        read_split(folder)
    with pytest.raises(DataError, match="no such split folder"):
        read_split(tmp_path / "nowhere")


def test_bio_error_accepts_valid_sequences():
    assert bio_error(["B-a", "I-a", "I-a", "B-a", "B-b", "I-b", "O"]) is None
    assert bio_error([]) is None


def test_bundled_sample_is_valid_and_test_has_unseen_cities():
    root = Path(__file__).resolve().parent.parent / "data" / "slots" / "sample"
    splits = {s: read_split(root / s) for s in ("train", "dev", "test")}
    assert len(splits["train"]) >= 200 and splits["dev"] and splits["test"]
    train_words = {w for u in splits["train"] for w in u.words}
    assert any(w not in train_words for u in splits["test"] for w in u.words)
