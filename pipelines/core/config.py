"""Typed experiment configs: dataclasses loaded from YAML with `key=value` overrides.

Every pipeline's config is a dataclass tree whose leaves are scalars, lists of scalars or
mappings of names to scalars (`dict[str, float]`: dotted keys merge into them).
Unknown keys and values of the wrong type are errors that name the dotted key, so a typo in
a YAML file or on the command line never silently runs the default experiment.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A config key is unknown or its value has the wrong type."""


@dataclasses.dataclass
class ScheduleConfig:
    """Learning-rate schedule shared by every pipeline (Keras schedules underneath)."""

    # The *_budget ones are paced by wall time, not steps: exponential_budget decays by
    # `decay_rate` in total over `train.max_minutes`, cosine_budget to `alpha` of the base rate.
    name: Literal["constant", "exponential", "exponential_budget", "cosine", "cosine_budget"] = (
        "constant"
    )
    decay_rate: float = 0.5
    decay_steps: int = 1000
    staircase: bool = False
    warmup_steps: int = 0
    alpha: float = 0.0  # cosine, cosine_budget: final lr as a fraction of the base lr


# Keras dtype policies by config name; `auto`: float16 on a GPU, bfloat16 on CPUs that have
# it (`precision.keras_policy`).
Precision = Literal["none", "auto", "mixed_float16", "mixed_bfloat16"]


@dataclasses.dataclass
class TrainConfig:
    """How the runner trains; the same keys for every pipeline."""

    epochs: int = 5
    batch_size: int = 32  # per replica; the global batch is this times the replicas
    learning_rate: float = 1e-3  # for one replica; scaled linearly with replicas
    scale_lr_with_replicas: bool = True
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    clipnorm: float = 0.0
    ema: float = 0.0  # >0: keep an exponential moving average of the weights (momentum)
    # >1: the trained model is the mean of the weights at the ends of the last N epochs
    # (their checkpoints are kept for it), instead of the best (or last) epoch's.
    average_last_epochs: int = 0
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
    # default: one device, no strategy object
    strategy: Literal["auto", "default", "onedevice", "mirrored", "multiworker"] = "auto"
    cpu_replicas: int = 0  # >1 splits the CPU into logical devices (testing mirrored)
    early_stopping_patience: int = 0  # 0 = off
    monitor: str = ""  # metric for early stopping and best weights; empty = task default
    max_minutes: float = 0.0  # stop training after this much wall time; 0 = no limit
    seed: int = 42
    # Warm start: begin from the kept weights of an earlier run of this pipeline (its MLflow
    # run id, run name, or kept-model folder) instead of a random initialisation; its
    # vocabularies and model sizes must be this run's (`pipelines.core.warm_start`).
    init_from: str = ""
    deterministic: bool = False  # tf.config.experimental.enable_op_determinism
    mixed_precision: Precision = "none"
    jit_compile: bool = False
    steps_per_execution: int = 1
    verbose: Literal["auto", "0", "1", "2"] = "auto"  # Keras progress output


@dataclasses.dataclass
class GateConfig:
    """The release gate: test metrics an export must reach before it is written, registered
    and blessed (`pipelines.core.gate`). Empty `metrics` and `max_regression`: no gate."""

    # Absolute bounds by logged metric name, e.g. {test_f1: 0.9}: at least this where higher
    # is better, at most this where lower is (losses, `Task.lower_is_better`).
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    # Allowed worsening against the version holding `baseline_alias`, e.g. {test_f1: 0.01};
    # negative: it must improve by that much. No version holds the alias: the check passes.
    max_regression: dict[str, float] = dataclasses.field(default_factory=dict)
    baseline_alias: str = "production"
    candidate_alias: str = "candidate"  # set on each blessed version; empty = none

    @property
    def configured(self) -> bool:
        return bool(self.metrics or self.max_regression)


@dataclasses.dataclass
class BatchingConfig:
    """TF Serving's server-side batching (`batching_parameters.txt` beside models.config,
    read with `--enable_batching --batching_parameters_file`)."""

    max_batch_size: int = 64
    batch_timeout_micros: int = 2000
    num_batch_threads: int = 4
    max_enqueued_batches: int = 100


@dataclasses.dataclass
class ExportConfig:
    """Where and how the SavedModel is written."""

    enabled: bool = True
    serving_base_path: str = "/models"  # the path TF Serving sees in models.config
    warmup_requests: int = 5
    log_to_mlflow: bool = True
    # Register each export as a new version of an MLflow registered model (needs
    # log_to_mlflow: the version's source is the run's logged SavedModel).
    register: bool = False
    registered_model: str = ""  # its name; empty = the pipeline's name
    # The serving graph's compute precision: empty = as trained (`train.mixed_precision`);
    # else one of its values. A re-export can serve in bfloat16 what trained in float32
    # (faster batched decoding on CPUs with AMX, slower where bfloat16 is emulated).
    mixed_precision: Literal["", Precision] = ""
    gate: GateConfig = dataclasses.field(default_factory=GateConfig)
    batching: BatchingConfig = dataclasses.field(default_factory=BatchingConfig)


@dataclasses.dataclass
class DataConfig:
    """Keys every pipeline's `data` section has (its own data config extends this)."""

    # A tf.data service dispatcher (grpc://host:port): the training input's processing runs
    # on its workers instead of in this process; empty = here.
    service: str = ""
    service_mode: Literal["distributed_epoch", "parallel_epochs"] = "distributed_epoch"


@dataclasses.dataclass
class PipelineConfig:
    """Base for every pipeline config: subclasses add `data` and `model` sections."""

    # The pipeline a recipe file is for (`configs/*.yaml` name it); empty = any. Running a
    # file under another pipeline is an error.
    pipeline: str = ""
    run_name: str = ""
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting only loss-free cases."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value in allowed:
            return value
        # A number written for a string choice (`train.verbose=1`), as `str` fields take it.
        if isinstance(value, int | float) and not isinstance(value, bool) and str(value) in allowed:
            return str(value)
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(repr(a) for a in allowed)}")
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp) or (str, Any)
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {
            _coerce(k, key_tp, f"{key} key"): _coerce(v, value_tp, f"{key}.{k}")
            for k, v in value.items()
        }
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported config type {_type_name(tp)}")


def _apply(obj: Any, values: dict[str, Any], prefix: str = "") -> None:
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {values!r}")
    hints = typing.get_type_hints(type(obj))
    fields = {f.name for f in dataclasses.fields(obj)}
    for name, value in values.items():
        key = f"{prefix}{name}"
        if name not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"unknown config key '{key}' (known here: {known})")
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current):
            _apply(current, value, f"{key}.")
        elif isinstance(current, dict) and isinstance(value, dict):
            # Entries merge (`--set a.m.k=v` adds or changes k); a null value removes one.
            merged = {**current, **value}
            kept = {k: v for k, v in merged.items() if v is not None}
            setattr(obj, name, _coerce(kept, hints[name], key))
        else:
            setattr(obj, name, _coerce(value, hints[name], key))


def parse_override(text: str) -> tuple[str, Any]:
    """Split `a.b=value`, reading the value as YAML so numbers, bools and lists work."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{text}' has an empty key")
    value = yaml.safe_load(raw) if raw.strip() else ""
    return key, value


def _nest(key: str, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def load_config(
    config_class: type[PipelineConfig],
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> PipelineConfig:
    """Defaults, then the YAML file, then each `key=value` override in order."""
    config = config_class()
    if path is not None:
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from exc
        try:
            _apply(config, values)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    for text in overrides:
        set_values(config, dict([parse_override(text)]))
    return config


def set_values(config: PipelineConfig, values: dict[str, Any]) -> None:
    """Set dotted keys to typed values (what an override says, without the text): each
    checked as a YAML file's or an override's value is."""
    for key, value in values.items():
        _apply(config, _nest(key, value))


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`: MLflow params are flat."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def dump_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True)
