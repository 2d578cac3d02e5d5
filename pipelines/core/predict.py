"""Batch prediction with an exported SavedModel: line N of the output answers line N of the
input, written to a temporary file and renamed so a crash never leaves half an output."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from pipelines.core.registry import get_task_class
from pipelines.core.task import DEFAULT_SIGNATURE, Task
from pipelines.core.textio import read_lines


def load_signature(export_dir: Path, signature: str = DEFAULT_SIGNATURE):
    """One signature of a SavedModel, as TF Serving calls it (keyword tensors in, a dict
    out). The loaded object is kept on the function so its variables stay alive."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tf-text ops the graphs use)

    loaded = tf.saved_model.load(str(export_dir))
    if signature not in loaded.signatures:
        raise missing_signature(export_dir, signature, loaded.signatures)
    function = loaded.signatures[signature]
    function._tfpipe_loaded = loaded
    return function


def missing_signature(export_dir: Path | str, signature: str, names) -> KeyError:
    """The error for an export without `signature`, naming those it has."""
    return KeyError(
        f"{export_dir} has no signature '{signature}' (it has: {', '.join(sorted(names))})"
    )


def answer_lines(
    task_cls: type[Task], function, signature: str, lines: Sequence[str], base_dir: Path
) -> list[str]:
    """One output line per input line (newlines in an answer become spaces): the task
    makes the request and reads the response, `function` is the loaded signature."""
    import tensorflow as tf

    request = task_cls.request_from_lines(lines, base_dir)
    outputs = function(**{k: tf.constant(v) for k, v in request.items()})
    answers = task_cls.lines_from_response(
        {k: v.numpy() for k, v in outputs.items()}, signature, lines
    )
    if len(answers) != len(lines):
        raise RuntimeError(f"{len(answers)} answers for {len(lines)} lines")
    return [answer.replace("\n", " ") for answer in answers]


def predict_file(
    pipeline: str,
    input_file: Path,
    output_file: Path,
    export_dir: Path,
    batch_size: int = 256,
    signature: str = DEFAULT_SIGNATURE,
) -> int:
    """Run the export over `input_file`; returns the number of lines written."""
    task_cls = get_task_class(pipeline)
    lines = read_lines(Path(input_file))
    function = load_signature(export_dir, signature)
    output_file = Path(output_file)
    output_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_file.with_name(f".{output_file.name}.tmp")
    written = 0
    with (
        open(tmp, "w", encoding="utf-8") as out,
        tqdm(total=len(lines), unit="line", desc=f"predict {pipeline}") as bar,
    ):
        for start in range(0, len(lines), batch_size):
            chunk = lines[start : start + batch_size]
            for answer in answer_lines(
                task_cls, function, signature, chunk, Path(input_file).parent
            ):
                out.write(answer + "\n")
            written += len(chunk)
            bar.update(len(chunk))
    os.replace(tmp, output_file)
    return written
