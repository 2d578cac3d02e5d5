"""The small interface a pipeline implements; the runner (`pipelines.core.runner`) does the rest.

A task owns what is really its own: reading its data, building its model, its metrics and
its serving function (raw input in, final output out). Training, strategies, checkpoints,
tracking, export and batch prediction belong to the runner and are shared by every task.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from pipelines.core.config import PipelineConfig


@dataclasses.dataclass
class Serving:
    """A serving function and the raw-input signature TF Serving calls it with.

    `fn` takes keyword arguments named as in `input_signature` and returns a dict of
    tensors; `resources` are the Keras layers/models whose variables and lookup tables the
    function uses (tracked into the SavedModel).
    """

    fn: Callable[..., dict[str, tf.Tensor]]
    input_signature: dict[str, tf.TensorSpec]
    resources: list[Any]


class Task(abc.ABC):
    """One pipeline: its data, model, metrics and serving function."""

    name: ClassVar[str]
    config_class: ClassVar[type[PipelineConfig]]
    #: Metric that early stopping and best-weight selection watch (Keras log name).
    default_monitor: ClassVar[str] = "val_loss"

    def __init__(self, config: PipelineConfig, data_dir: Path):
        self.config = config
        self.data_dir = Path(data_dir)

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

    # -- model ------------------------------------------------------------------------
    @abc.abstractmethod
    def build_model(self) -> keras.Model:
        """The trainable Keras model (built inside the strategy scope)."""

    @abc.abstractmethod
    def compile_args(self, model: keras.Model) -> dict[str, Any]:
        """`loss`, `metrics` (and `loss_weights`) for `model.compile` of `model` (a loss may
        read the model's own weights, as a CRF's does its transitions)."""

    # -- metrics ----------------------------------------------------------------------
    @abc.abstractmethod
    def evaluate(self, model: keras.Model, split: str) -> dict[str, float]:
        """Task metrics on `split` ("validation" or "test"), through the serving graph."""

    def plots(self, model: keras.Model, out_dir: Path) -> list[Path]:
        """PNG files worth looking at after training (confusion matrices, saliency...)."""
        return []

    def artifacts(self, out_dir: Path) -> list[Path]:
        """Other files to log with the run (vocabularies...)."""
        return []

    # -- serving ----------------------------------------------------------------------
    @abc.abstractmethod
    def serving(self, model: keras.Model) -> Serving:
        """Raw input to final output, for export and evaluation."""

    @abc.abstractmethod
    def warmup_inputs(self) -> dict[str, list[Any]]:
        """A few real raw inputs, written as TF Serving warm-up requests."""

    # -- batch prediction -------------------------------------------------------------
    predict_input: ClassVar[str] = "text"

    @classmethod
    def request_from_lines(cls, lines: Sequence[str], base_dir: Path) -> dict[str, Any]:
        """Turn input-file lines into one serving request (default: the text itself)."""
        return {cls.predict_input: np.array(list(lines), dtype=object)}

    @staticmethod
    @abc.abstractmethod
    def lines_from_response(outputs: dict[str, np.ndarray]) -> list[str]:
        """One output line per request element, in order."""
