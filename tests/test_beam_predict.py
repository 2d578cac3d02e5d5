"""Batch prediction on Apache Beam (`tfpipe predict --runner beam`) on the DirectRunner:
the same lines as plain `tfpipe predict`, and lines that cannot be answered (not UTF-8,
missing or broken images) in the dead-letter output while every other line is answered."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import DATA, tfpipe

from pipelines.core.beam_predict import numbered_lines, predict_on_beam
from pipelines.core.export import latest_export
from pipelines.core.predict import predict_file
from pipelines.core.textio import read_lines

SENTENCES = ["他们在北京参观博物馆。", "", "今天我们学习技术。", "   ", "abc", "好"]
# As PKU's test text without its spaces, and worse: sentences of every length (a line far
# longer than any length group, without a clause end), Chinese and ASCII punctuation,
# punctuation alone, full-width letters and digits, whitespace and a \r inside a line.
MIXED = [
    "“你好！”他说，“我们走吧？”",
    "１９９７年，ＡＢＣ公司的收入增长了１５．５％（见表２）。",
    "Hello, world! 1,234.5 (test) -- ok?",
    "。，、；：？！",
    "……——《》",
    "中\t国\u3000人民\r银行",
    "迈向充满希望的新世纪" * 90,
    "他们在北京参观博物馆。今天我们学习技术，明天我们去上海；后天回来。",
]


def _whitespace_free(text: str) -> str:
    return "".join(text.split())


def _errors(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
def test_beam_writes_the_lines_plain_predict_writes(segmentation_run, tmp_path):
    """Done when: `tfpipe predict segmentation --runner beam --single-file` on the
    DirectRunner (two workers) gives the same bytes as plain predict (`predict_file`, what
    `tfpipe predict` runs) on text of mixed lengths and punctuation, its batches made
    otherwise; a BOM, CRLF endings and an output named without a folder (in the working
    directory: Beam's local file system matches no bare file name) as well."""
    lines = (SENTENCES + MIXED) * 17 + ["末行\r"]
    source = tmp_path / "in.txt"
    source.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8") + b"\r\n")
    plain, beam = tmp_path / "plain.txt", tmp_path / "beam" / "out.txt"
    beam.parent.mkdir()
    predict_file(
        "segmentation", source, plain, latest_export(segmentation_run / "exports", "segmentation")
    )
    proc = tfpipe(
        "predict",
        "segmentation",
        "--input",
        "../in.txt",
        "--output",
        "out.txt",
        "--workdir",
        str(segmentation_run),
        "--runner",
        "beam",
        "--single-file",
        "--batch-size",
        "32",
        "--",
        "--direct_num_workers=2",
        cwd=beam.parent,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{len(lines)} lines answered, 0 dead-lettered" in proc.stdout
    assert beam.read_bytes() == plain.read_bytes()
    answers = plain.read_text(encoding="utf-8").split("\n")
    assert len(answers) == len(lines) + 1 and answers[-1] == ""
    assert [a.replace(" ", "") for a in answers[:-1]] == [_whitespace_free(x) for x in lines]
    assert (tmp_path / "beam" / "out.txt.errors").read_text() == ""
    assert sorted(p.name for p in beam.parent.iterdir()) == ["out.txt", "out.txt.errors"]


def test_beam_reads_the_lines_plain_predict_reads(tmp_path):
    """Line ends, a BOM and bytes that are line breaks to `str.splitlines` (NEL, U+2028)
    give the lines `read_lines` gives, so line N means the same line to both predicts."""
    text = "\ufeffa\r\n\r\nb\r\r\nc\rd\n\u2028e\x85f\n\n  \ng"
    source = tmp_path / "in.txt"
    source.write_bytes(text.encode("utf-8"))
    read = [(n, raw.decode("utf-8")) for n, raw in numbered_lines(str(source))]
    assert read == list(enumerate(read_lines(source), start=1))
    assert [line for _, line in read] == ["a", "", "b", "c\rd", "\u2028e\x85f", "", "  ", "g"]


def test_a_line_that_is_not_utf8_goes_to_the_dead_letter_output(segmentation_run, tmp_path):
    lines = [s.encode("utf-8") for s in SENTENCES * 3]
    lines[2] = b"\xe4\xbb\x96\xff\xfe"  # a valid first character, then bytes that are not
    source = tmp_path / "in.txt"
    source.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out"
    stale = tmp_path / "out-00000-of-00009"
    stale.write_text("1\tfrom an earlier job\n")
    export = latest_export(segmentation_run / "exports", "segmentation")
    result = predict_on_beam("segmentation", source, out, export, batch_size=4)
    assert (result.answered, result.failed) == (len(lines) - 1, 1)
    assert not stale.exists()
    answers = {}
    for shard in tmp_path.glob("out-*-of-*"):
        for row in shard.read_text(encoding="utf-8").splitlines():
            number, answer = row.split("\t")
            answers[int(number)] = answer
    assert sorted(answers) == [n for n in range(1, len(lines) + 1) if n != 3]
    for number, answer in answers.items():
        line = lines[number - 1].decode("utf-8")
        assert answer.replace(" ", "") == _whitespace_free(line)
    assert _errors(tmp_path / "out.errors") == [
        {
            "file": str(source),
            "line": 3,
            "input": "他\\xff\\xfe",
            "reason": "not valid UTF-8 (byte 0xff at offset 3)",
        }
    ]

    with pytest.raises(KeyError, match="has no signature 'nope' .*serving_default"):
        predict_on_beam("segmentation", source, out, export, signature="nope")


@pytest.fixture(scope="module")
def images_export(tmp_path_factory):
    """A LeNet trained for one epoch: enough to answer, which is all these tests need."""
    workdir = tmp_path_factory.mktemp("images-run")
    proc = tfpipe(
        "run",
        "images",
        "--workdir",
        str(workdir),
        "--set",
        "model.name=lenet",
        "--set",
        "train.epochs=1",
        "--set",
        "train.batch_size=8",
        "--set",
        "data.explain_images=0",
        "--set",
        "export.warmup_requests=1",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return latest_export(workdir / "exports", "images")


def test_image_paths_that_cannot_be_read_or_decoded_are_dead_lettered(images_export, tmp_path):
    """Missing files, files that are not images and a truncated PNG (which only the graph's
    decoder finds) share batches with good images: those are answered as plain predict
    answers them, the bad ones each get their own reason."""
    folder = tmp_path / "images"
    folder.mkdir()
    good = sorted((DATA / "images" / "test").rglob("*.*"))[:5]
    for path in good:
        shutil.copy(path, folder / f"{path.parent.name}-{path.name}")
    names = sorted(p.name for p in folder.iterdir())
    png = next(folder.glob("*.png"))
    (folder / "truncated.png").write_bytes(png.read_bytes()[:100])
    (folder / "page.jpg").write_text("<html>not an image</html>")
    listing = [f"images/{n}" for n in names]
    listing[1:1] = ["images/missing.png"]
    listing[4:4] = ["images/page.jpg", "images/truncated.png"]
    source = tmp_path / "list.txt"
    source.write_text("\n".join(listing) + "\n")
    (tmp_path / "good.txt").write_text("".join(f"images/{n}\n" for n in names))

    result = predict_on_beam(
        "images", source, tmp_path / "labels.tsv", images_export, batch_size=4, single_file=True
    )
    predict_file("images", tmp_path / "good.txt", tmp_path / "plain.tsv", images_export)
    plain = iter((tmp_path / "plain.tsv").read_text().splitlines())
    bad = {"images/missing.png", "images/page.jpg", "images/truncated.png"}
    expected = ["" if line in bad else next(plain) for line in listing]
    assert (tmp_path / "labels.tsv").read_text().splitlines() == expected
    assert (result.answered, result.failed) == (5, 3)
    reasons = {e["input"]: e["reason"] for e in _errors(tmp_path / "labels.tsv.errors")}
    assert reasons == {
        "images/missing.png": f"{folder}/missing.png: cannot read image: No such file or directory",
        "images/page.jpg": f"{folder}/page.jpg: not a JPEG, PNG, GIF or BMP image",
        "images/truncated.png": "InvalidArgumentError: Invalid PNG data, size 100",
    }


def test_what_follows_the_double_dash_goes_to_beam():
    from pipelines.cli import _predict, _split_beam_args, build_parser
    from pipelines.core.config import ConfigError

    argv, beam_args = _split_beam_args(
        [
            "--verbose",
            "predict",
            "segmentation",
            "--input",
            "a",
            "--output",
            "b",
            "--runner",
            "beam",
            "--",
            "--runner=FlinkRunner",
            "--input=x",
        ]
    )
    args = build_parser().parse_args(argv)
    assert (args.runner, args.input, beam_args) == (
        "beam",
        "a",
        ["--runner=FlinkRunner", "--input=x"],
    )
    other = ["data", "fsdd-connected", "src", "dst", "--", "--train", "5"]
    assert _split_beam_args(other) == (other, [])
    args = build_parser().parse_args(
        ["predict", "segmentation", "--input", "a", "--output", "b", "--single-file"]
    )
    with pytest.raises(ConfigError, match="need --runner beam"):
        _predict(args)
