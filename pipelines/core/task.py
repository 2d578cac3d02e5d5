"""The small interface a pipeline implements; the runner (`pipelines.core.runner`) does the
rest.

A task owns what is really its own: reading its data, building its model, its metrics and
its serving functions (raw input in, final output out). Training, strategies, checkpoints,
tracking, export and batch prediction belong to the runner and are shared by every task.

The life of a task:

- training (`tfpipe run`): `prepare` reads the data and builds vocabularies; `datasets`,
  `build_model` and `compile_args` feed `Model.fit`; `calibrate` measures what the export
  needs from the trained model; `evaluate` and `plots` measure the result; `save_assets`
  writes what the model needs besides its weights (vocabularies, class names, statistics)
  into the run's kept model; `signatures` are exported.
- re-export (`tfpipe export`): no data is read; `load_assets` restores what `save_assets`
  wrote, then `build_model`, the saved weights and `signatures` as in training.

A task whose training step is not "loss of outputs against targets" (a VAE's KL term, a
GAN, layer-wise pretraining) returns from `build_model` a `keras.Model` subclass that
overrides `compute_loss` (or `train_step`), and `compile_args` returns no `loss`: the
runner's `fit`, callbacks, checkpoints and strategies work unchanged.

Adding a pipeline: a package `pipelines/<name>/` with its config dataclass (`data`, `model`,
`serving` sections over `pipelines.core.config.PipelineConfig`), a `Task` subclass, and in
its `__init__.py` `TASK = "pipelines.<name>.task:<Class>"`; `pipelines.core.registry` finds
it (a pipeline in another package: an entry point in the `tfpipelines.pipelines` group).
"""

from __future__ import annotations

import abc
import dataclasses
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from pipelines.core.config import PipelineConfig

DEFAULT_SIGNATURE = "serving_default"
EVAL_BATCH = 256  # requests per call when a task serves a whole split


@dataclasses.dataclass
class Serving:
    """A serving function and the raw-input signature TF Serving calls it with.

    `fn` takes keyword arguments named as in `input_signature` and returns a dict of
    tensors; `resources` are the Keras layers/models whose variables and lookup tables the
    function uses (tracked into the SavedModel). `warmup`: example inputs for this
    signature's TF Serving warm-up requests, when the task's `warmup_inputs` (matched by
    input name) do not fit it.
    """

    fn: Callable[..., dict[str, tf.Tensor]]
    input_signature: dict[str, tf.TensorSpec]
    resources: list[Any]
    warmup: dict[str, list[Any]] | None = None


class Task(abc.ABC):
    """One pipeline: its data, model, metrics and serving functions."""

    name: ClassVar[str]
    config_class: ClassVar[type[PipelineConfig]]
    #: Metric that early stopping and best-weight selection watch (Keras log name).
    default_monitor: ClassVar[str] = "val_loss"
    #: Task metrics where lower is better (error rates); losses always are.
    lower_is_better: ClassVar[tuple[str, ...]] = ()
    #: The serving input that batch prediction fills from the input file's lines.
    predict_input: ClassVar[str] = "text"
    #: The output whose text is batch prediction's line for a request (segmented words, a
    #: transcript, a translation); None, or a response without it: a JSON object a line.
    text_output: ClassVar[str | None] = None
    #: Asset files (of `save_assets`) that `calibrate` fills from the trained model: a warm
    #: start (`train.init_from`) compares every other asset with the kept model's.
    calibrated_assets: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: PipelineConfig, data_dir: Path | None):
        self.config = config
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self._serving_fns: dict[tuple[int, str], tuple[keras.Model, Any, list[str]]] = {}

    def check_config(self) -> None:
        """Raise `ConfigError` for settings that are wrong whatever the data: the runner
        calls it before any data is read, so a bad value costs no reading (default: none)."""
        return None

    # -- data -------------------------------------------------------------------------
    @abc.abstractmethod
    def prepare(self, workdir: Path) -> None:
        """Read and validate the data, build vocabularies (with progress)."""

    @abc.abstractmethod
    def data_files(self) -> list[Path]:
        """The files the run reads: fingerprinted and tagged on the MLflow run."""

    @abc.abstractmethod
    def datasets(self, global_batch_size: int) -> tuple[tf.data.Dataset, tf.data.Dataset | None]:
        """Batched (train, validation) datasets of `(inputs, targets[, sample_weight])`."""

    # -- what the trained model needs besides its weights ----------------------------
    @abc.abstractmethod
    def save_assets(self, folder: Path) -> list[Path]:
        """Write what `build_model` and `signatures` need beyond the config (vocabularies,
        class names, statistics) into `folder`; returns the files written."""

    @abc.abstractmethod
    def load_assets(self, folder: Path) -> None:
        """Restore what `save_assets` wrote, without reading any training data."""

    # -- model ------------------------------------------------------------------------
    @abc.abstractmethod
    def build_model(self) -> keras.Model:
        """The trainable Keras model (built inside the strategy scope)."""

    @abc.abstractmethod
    def compile_args(self, model: keras.Model) -> dict[str, Any]:
        """`loss`, `metrics` (and `loss_weights`) for `model.compile` of `model` (a loss may
        read the model's own weights, as a CRF's does its transitions)."""

    def callbacks(self) -> list[keras.callbacks.Callback]:
        """Callbacks of the task's own, run after the runner's (e.g. one that moves a
        layer-wise pretraining from phase to phase and puts the phase into the logs).
        Whatever they need to resume exactly must live in model or optimizer variables,
        which the checkpoint keeps."""
        return []

    def calibrate(self, model: keras.Model) -> None:
        """Called once after training, before the model is kept: measure what the export
        needs from the trained model (an anomaly threshold chosen on validation data, say).
        Keep it where `save_assets` writes it, so a re-export has it without the data."""
        return None

    # -- metrics ----------------------------------------------------------------------
    @abc.abstractmethod
    def evaluate(self, model: keras.Model, split: str) -> dict[str, float]:
        """Task metrics on `split` ("validation" or "test"), through the serving graph."""

    def validation_every(self) -> int:
        """Measure the task metrics on validation data every N epochs (0: never during
        training): more than 1 where that costs much (decoding a whole dev set)."""
        return 1

    def plots(self, model: keras.Model, out_dir: Path) -> list[Path]:
        """PNG files worth looking at after training (confusion matrices, saliency...)."""
        return []

    # -- serving ----------------------------------------------------------------------
    @abc.abstractmethod
    def signatures(self, model: keras.Model) -> dict[str, Serving]:
        """Serving functions by signature name: `serving_default` (required) and any
        others; raw input to final output, for export and evaluation."""

    @abc.abstractmethod
    def warmup_inputs(self) -> dict[str, list[Any]]:
        """A few real raw inputs by input name, written as TF Serving warm-up requests
        (for every signature whose inputs they match)."""

    def serving_function(self, model: keras.Model, signature: str = DEFAULT_SIGNATURE):
        """(traced `tf.function`, input names) of one signature, traced once per model."""
        key = (id(model), signature)
        cached = self._serving_fns.get(key)
        if cached is None or cached[0] is not model:
            serving = self.signatures(model)[signature]
            names = list(serving.input_signature)
            fn = tf.function(
                serving.fn, input_signature=[serving.input_signature[n] for n in names]
            )
            cached = self._serving_fns[key] = (model, fn, names)
        return cached[1], cached[2]

    def serve_batches(
        self,
        model: keras.Model,
        inputs: dict[str, Sequence[Any]],
        signature: str = DEFAULT_SIGNATURE,
        batch_size: int = EVAL_BATCH,
        desc: str | None = None,
    ) -> Iterator[dict[str, np.ndarray]]:
        """The outputs of `signature` over `inputs` (equal-length sequences by input
        name), `batch_size` requests per call, in order, with a progress bar."""
        fn, names = self.serving_function(model, signature)
        count = len(next(iter(inputs.values()))) if inputs else 0
        starts = range(0, count, batch_size)
        for start in tqdm(
            starts,
            desc=desc or f"{self.name}: serving",
            unit="batch",
            leave=False,
            disable=len(starts) < 4,
        ):
            args = [_tensor(inputs[n][start : start + batch_size]) for n in names]
            yield {k: v.numpy() for k, v in fn(*args).items()}

    # -- batch prediction -------------------------------------------------------------
    @classmethod
    def request_from_lines(cls, lines: Sequence[str], base_dir: Path) -> dict[str, Any]:
        """Turn input-file lines into one serving request (default: the text itself)."""
        return {cls.predict_input: np.array(list(lines), dtype=object)}

    @classmethod
    def lines_from_response(
        cls,
        outputs: dict[str, np.ndarray],
        signature: str = DEFAULT_SIGNATURE,
        lines: Sequence[str] = (),
    ) -> list[str]:
        """One output line per request element, in order (`lines`: the input lines the
        request was made from, for formats that repeat them). The default writes each
        element's outputs as a JSON object, or the text of `text_output` where the task
        names one; tasks with other formats override this."""
        if cls.text_output is not None and cls.text_output in outputs:
            return [t.decode("utf-8") for t in outputs[cls.text_output]]
        return json_lines(outputs)


def json_lines(outputs: dict[str, np.ndarray]) -> list[str]:
    """One JSON object per request element: strings decoded, arrays as lists."""
    count = len(next(iter(outputs.values()))) if outputs else 0
    return [
        json.dumps({k: _plain(v[i]) for k, v in outputs.items()}, ensure_ascii=False)
        for i in range(count)
    ]


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _tensor(values: Sequence[Any]) -> tf.Tensor:
    if isinstance(values, np.ndarray) and values.dtype != object:
        return tf.constant(values)
    values = list(values)
    if values and isinstance(values[0], str | bytes):
        return tf.constant(values, dtype=tf.string)
    return tf.constant(np.asarray(values))


def write_vocabulary(path: Path, items: Sequence[str]) -> Path:
    """One item a line, UTF-8: the form every task keeps its vocabularies in."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{item}\n" for item in items), encoding="utf-8")
    return path


def read_vocabulary(path: Path) -> list[str]:
    """The items `write_vocabulary` wrote, in order."""
    text = Path(path).read_text(encoding="utf-8")
    return text.split("\n")[:-1] if text else []
