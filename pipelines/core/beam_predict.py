"""Batch prediction on Apache Beam: the same export, request and line formats as
`tfpipe predict`, run through Beam's `RunInference` on the DirectRunner or, by pipeline
options, on Dataflow, Flink or Spark.

Why a model handler of our own: Beam's TensorFlow handler loads Keras model files (and
needs tensorflow_hub); an export is a SavedModel called through one signature, exactly as
TF Serving and plain `tfpipe predict` call it. Each input line is keyed by its line number,
so every answer says which line it answers; a line that cannot be answered (not UTF-8, an
image path that does not exist or is not an image, any error the task's request or the
graph raises for it) goes to the dead-letter output with the reason instead of failing the
job.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.core.predict import missing_signature
from pipelines.core.task import DEFAULT_SIGNATURE
from pipelines.core.textio import DataError

NAMESPACE = "tfpipe"
ERRORS_SUFFIX = ".errors"
SHARDS_SUFFIX = ".shards"
TF_BOILERPLATE = re.compile(r"Graph execution error:|Detected at node|<stack traces|\s*\[\[|\s*$")
TF_OP_SUFFIX = re.compile(r"\s*\[Op:\S+\]$")


class Outcome(NamedTuple):
    """What one input line came to: an output line, or why there is none."""

    line: str
    answer: str | None
    error: str | None = None


@dataclasses.dataclass
class BeamPredictResult:
    answered: int | None  # None where the runner reports no metrics
    failed: int | None
    outputs: str  # the sorted single file, or the shards' file pattern
    errors: str


def numbered_lines(path: str) -> Iterator[tuple[int, bytes]]:
    """(line number from 1, raw bytes without the line ending) of every line of `path`,
    read by one worker; as `read_lines` splits (a UTF-8 BOM and trailing \\r dropped)."""
    with FileSystems.open(path) as stream:
        for number, raw in enumerate(iter(stream.readline, b""), start=1):
            raw = raw.removesuffix(b"\n").rstrip(b"\r")
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            yield number, raw


class DecodeLines(beam.DoFn):
    """(number, bytes) -> (number, text); lines that are not UTF-8 go to `errors`."""

    def __init__(self, source: str):
        self.source = source
        self.failed = Metrics.counter(NAMESPACE, "failed")

    def process(self, element: tuple[int, bytes]):
        number, raw = element
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.failed.inc()
            reason = f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
            yield beam.pvalue.TaggedOutput(
                "errors",
                dead_letter(self.source, number, raw.decode("utf-8", "backslashreplace"), reason),
            )


def dead_letter(source: str, number: int, line: str, reason: str) -> str:
    """One line of the dead-letter output: JSON naming the file, line, input and reason."""
    return json.dumps(
        {"file": source, "line": number, "input": line, "reason": reason}, ensure_ascii=False
    )


class SignatureHandler(ModelHandler[str, Outcome, Any]):
    """Serves input lines through one SavedModel signature, loaded once per worker with
    `tf.saved_model.load`; the task turns lines into requests and responses into lines.

    A batch that fails is retried line by line, so only the lines that fail themselves
    become error outcomes."""

    def __init__(
        self, pipeline: str, export_dir: str, signature: str, base_dir: str, batch_size: int
    ):
        super().__init__(min_batch_size=batch_size, max_batch_size=batch_size)
        self.pipeline = pipeline
        self.export_dir = export_dir
        self.signature = signature
        self.base_dir = base_dir

    def load_model(self):
        from pipelines.core.predict import load_signature

        return load_signature(Path(self.export_dir), self.signature)

    def run_inference(
        self, batch: Sequence[str], model, inference_args: dict[str, Any] | None = None
    ) -> list[Outcome]:
        try:
            answers = self._answer(batch, model)
        except Exception as exc:  # noqa: BLE001  (any failure: find the lines that cause it)
            if len(batch) == 1:
                return [Outcome(batch[0], None, _reason(exc))]
        else:
            return [Outcome(line, answer) for line, answer in zip(batch, answers, strict=True)]
        return [outcome for line in batch for outcome in self.run_inference([line], model)]

    def _answer(self, lines: Sequence[str], function) -> list[str]:
        from pipelines.core.predict import answer_lines
        from pipelines.core.registry import get_task_class

        return answer_lines(
            get_task_class(self.pipeline), function, self.signature, lines, Path(self.base_dir)
        )

    def get_metrics_namespace(self) -> str:
        return f"{NAMESPACE}_{self.pipeline}"


def _reason(exc: Exception) -> str:
    """One line saying why: TensorFlow's own message without its graph boilerplate (node
    names, stack notes); a request built from the one line says "line 1:" of itself, which
    the dead letter's own line number replaces."""
    message = getattr(exc, "message", None) or str(exc)
    lines = [line for line in message.splitlines() if not TF_BOILERPLATE.match(line)]
    reason = re.sub(r"^line 1: ", "", TF_OP_SUFFIX.sub("", lines[0])) if lines else ""
    return reason if isinstance(exc, DataError) else f"{type(exc).__name__}: {reason}"


class SplitOutcomes(beam.DoFn):
    """(number, Outcome) -> `number<TAB>answer` lines, or dead letters to `errors`."""

    def __init__(self, source: str):
        self.source = source
        self.answered = Metrics.counter(NAMESPACE, "answered")
        self.failed = Metrics.counter(NAMESPACE, "failed")

    def process(self, element: tuple[int, Outcome]):
        number, outcome = element
        if outcome.error is None:
            self.answered.inc()
            yield f"{number}\t{outcome.answer}"
        else:
            self.failed.inc()
            yield beam.pvalue.TaggedOutput(
                "errors", dead_letter(self.source, number, outcome.line, outcome.error)
            )


def build_pipeline(
    root: beam.Pipeline,
    pipeline: str,
    input_file: str,
    shards: str,
    errors: str,
    export_dir: str,
    batch_size: int,
    signature: str,
) -> None:
    """Read -> number -> decode -> RunInference (batched) -> sharded answers + dead letters."""
    base_dir = FileSystems.split(input_file)[0]  # image and WAV paths are relative to it
    handler = KeyedModelHandler(
        SignatureHandler(pipeline, export_dir, signature, base_dir, batch_size)
    )
    decoded = (
        root
        | "Input" >> beam.Create([input_file])
        | "NumberLines" >> beam.FlatMap(numbered_lines)
        | "Spread" >> beam.Reshuffle()
        | "Decode" >> beam.ParDo(DecodeLines(input_file)).with_outputs("errors", main="lines")
    )
    split = (
        decoded.lines
        | "Predict" >> RunInference(handler)
        | "Split" >> beam.ParDo(SplitOutcomes(input_file)).with_outputs("errors", main="answers")
    )
    _ = split.answers | "WriteAnswers" >> beam.io.WriteToText(shards)
    _ = (
        (decoded.errors, split.errors)
        | "AllErrors" >> beam.Flatten()
        | "WriteErrors" >> beam.io.WriteToText(errors, shard_name_template="")
    )


def predict_on_beam(
    pipeline: str,
    input_file: str,
    output: str,
    export_dir: str,
    batch_size: int = 256,
    signature: str = DEFAULT_SIGNATURE,
    single_file: bool = False,
    beam_args: Sequence[str] = (),
) -> BeamPredictResult:
    """Run the export over `input_file` as a Beam job (`beam_args`: Beam's own pipeline
    options; the DirectRunner unless they name another) and wait for it.

    Answers go to shards `OUTPUT-SSSSS-of-NNNNN` of `number<TAB>answer` lines, or with
    `single_file` to OUTPUT itself in plain `tfpipe predict`'s format (line N answers line
    N; a dead-lettered line is left empty there); dead letters to `OUTPUT.errors`."""
    input_file, output, export_dir = (absolute(p) for p in (input_file, output, export_dir))
    check_signature(export_dir, signature)
    if not FileSystems.exists(input_file):
        raise DataError(f"{input_file}: no such file")
    shards = output + SHARDS_SUFFIX if single_file else output
    errors = output + ERRORS_SUFFIX
    FileSystems.delete(shard_files(shards))  # an earlier job's shards would mix in
    root = beam.Pipeline(options=PipelineOptions(list(beam_args)))
    build_pipeline(root, pipeline, input_file, shards, errors, export_dir, batch_size, signature)
    result = root.run()
    result.wait_until_finish()
    answered, failed = (_counter(result, name) for name in ("answered", "failed"))
    if single_file:
        merge_sorted(shards, errors, output, expected=answered)
    return BeamPredictResult(
        answered, failed, output if single_file else f"{output}-*-of-*", errors
    )


def absolute(path: str | os.PathLike) -> str:
    """A local path made absolute (a URL such as gs://... as it is): Beam's local file
    system matches no bare file name (`out.txt.shards-*-of-*` finds nothing where
    `./out.txt.shards-*` finds the shards), and workers need not share the launcher's
    working directory."""
    path = str(path)
    return os.path.abspath(path) if FileSystems.get_scheme(path) is None else path


def check_signature(export_dir: str, signature: str) -> None:
    """Fail before the job starts if the export or its signature is not there (read from
    saved_model.pb, without loading the model)."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = FileSystems.join(export_dir, "saved_model.pb")
    if not FileSystems.exists(path):
        raise FileNotFoundError(f"{export_dir}: no SavedModel (saved_model.pb) there")
    with FileSystems.open(path) as stream:
        saved = saved_model_pb2.SavedModel.FromString(stream.read())
    names = set(saved.meta_graphs[0].signature_def) - {"__saved_model_init_op"}
    if signature not in names:
        raise missing_signature(export_dir, signature, names)


def _counter(result, name: str) -> int | None:
    from apache_beam.metrics.metric import MetricsFilter

    try:
        found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE).with_name(name))[
            "counters"
        ]
    except (NotImplementedError, AttributeError):  # runners that report no metrics
        return None
    values = [c.committed if c.committed is not None else c.attempted for c in found]
    return sum(values) if values else 0


def shard_files(prefix: str) -> list[str]:
    """The files `WriteToText(prefix)` writes: PREFIX-SSSSS-of-NNNNN."""
    return [m.path for r in FileSystems.match([f"{prefix}-*-of-*"]) for m in r.metadata_list]


def merge_sorted(shards: str, errors: str, output: str, expected: int | None = None) -> int:
    """The shards `SHARDS-*-of-*` as one file sorted by line number, in plain predict's
    format: line N answers input line N, dead-lettered lines (named in `errors`) left
    empty. Held in memory, written to a temporary name and renamed; the shards are
    deleted. Returns the number of lines written. `expected`: the answers the job
    counted; other than that many in the shards fails before anything is written."""
    answers: dict[int, str] = {}
    files = shard_files(shards)
    for path in files:
        with FileSystems.open(path) as stream:
            for raw in iter(stream.readline, b""):
                number, _, answer = raw.decode("utf-8").removesuffix("\n").partition("\t")
                answers[int(number)] = answer
    if expected is not None and len(answers) != expected:
        raise RuntimeError(
            f"{shards}-*-of-*: {len(answers)} answers in {len(files)} shards, "
            f"the job counted {expected}"
        )
    last = max(answers, default=0)
    with FileSystems.open(errors) as stream:
        for raw in iter(stream.readline, b""):
            last = max(last, json.loads(raw)["line"])
    folder, name = FileSystems.split(output)
    tmp = FileSystems.join(folder, f".{name}.tmp")
    with FileSystems.create(tmp) as out:
        for number in range(1, last + 1):
            out.write((answers.get(number, "") + "\n").encode("utf-8"))
    FileSystems.rename([tmp], [output])
    FileSystems.delete(files)
    return last
