"""The search space of `tfpipe tune`: a YAML file of config keys and the values to try.

    metric: val_f1          # default: train.monitor, else the task's early-stopping monitor
    direction: maximize     # default: minimize losses and the task's lower_is_better metrics
    trial_minutes: 2        # each trial's train.max_minutes (0: the config's)
    base: {train.epochs: 5} # fixed for every trial
    pruning: {startup_trials: 2, warmup_epochs: 0}   # or `pruning: false`
    params:
      train.learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}
      model.units: {choices: [16, 32]}
      model.layers: {low: 1, high: 2}

Keys are the dotted config keys of `--set`. Whether a range is of integers or of numbers
is the config key's type (`step` and `log` as Optuna's distributions take them). Every key
and every bound or choice is checked against the pipeline's typed config before any trial
runs, so a typo fails at once, naming the key.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import yaml

from pipelines.core import config as cfgmod

SPACE_KEYS = ("metric", "direction", "trial_minutes", "base", "pruning", "params")
RANGE_KEYS = ("low", "high", "log", "step")
PRUNING_KEYS = ("startup_trials", "warmup_epochs")
DIRECTIONS = ("minimize", "maximize")
# Keys the tune sets itself for every trial.
NOT_TUNABLE = ("pipeline", "run_name")


@dataclasses.dataclass
class SearchSpace:
    """A parsed, checked space file."""

    path: Path
    metric: str
    direction: str  # minimize | maximize
    trial_minutes: float  # 0: the config's train.max_minutes
    base: dict[str, Any]  # dotted key -> value, for every trial
    distributions: dict[str, Any]  # dotted key -> optuna distribution
    prune: bool
    startup_trials: int  # complete trials before any is pruned
    warmup_epochs: int  # epochs of each trial before it may be pruned

    def fixed_values(self) -> dict[str, Any]:
        """What every trial sets besides its own params."""
        minutes = {"train.max_minutes": self.trial_minutes} if self.trial_minutes else {}
        return {**self.base, **minutes}

    def pruner(self):
        import optuna

        if not self.prune:
            return optuna.pruners.NopPruner()
        # Optuna counts steps from ours (epochs, 1-based): no pruning before step W + 1.
        return optuna.pruners.MedianPruner(
            n_startup_trials=self.startup_trials, n_warmup_steps=self.warmup_epochs + 1
        )


def require_optuna():
    """The optuna module, or a ConfigError that says how to install it."""
    try:
        import optuna
    except ModuleNotFoundError as exc:
        if exc.name != "optuna":
            raise
        raise cfgmod.ConfigError(
            'tfpipe tune needs Optuna: pip install -e ".[tune]" (or pip install "optuna>=5,<6")'
        ) from exc
    return optuna


def load_space(path: str | Path, task_cls, config: cfgmod.PipelineConfig) -> SearchSpace:
    """Read and check the space file `path` against `config` (the trials' starting point)."""
    require_optuna()
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise cfgmod.ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise cfgmod.ConfigError(f"{path}: cannot read the search space: {exc.strerror}") from exc
    if not isinstance(raw, dict):
        raise cfgmod.ConfigError(f"{path}: expected a mapping with params:, got {raw!r}")
    try:
        return _parse(path, raw, task_cls, config)
    except cfgmod.ConfigError as exc:
        raise cfgmod.ConfigError(f"{path}: {exc}") from exc


def _parse(path: Path, raw: dict, task_cls, config: cfgmod.PipelineConfig) -> SearchSpace:
    from pipelines.core.runner import minimizes

    _known(raw, SPACE_KEYS, "search space")
    metric = str(raw.get("metric") or config.train.monitor or task_cls.default_monitor)
    direction = raw.get("direction") or ("minimize" if minimizes(task_cls, metric) else "maximize")
    if direction not in DIRECTIONS:
        raise cfgmod.ConfigError(f"direction: {direction!r} is not one of {', '.join(DIRECTIONS)}")
    minutes = _number(raw.get("trial_minutes", 0), "trial_minutes", float)
    base = _mapping(raw.get("base") or {}, "base")
    pruning = raw.get("pruning", True)
    if pruning is True or pruning is None:
        pruning = {}
    if pruning is not False:
        _known(_mapping(pruning, "pruning"), PRUNING_KEYS, "pruning")
    settings = pruning or {}
    params = _mapping(raw.get("params"), "params")
    if not params:
        raise cfgmod.ConfigError("params: no config keys to tune")

    trial = copy.deepcopy(config)
    _check_keys(trial, base, "base")
    if minutes:
        cfgmod.set_values(trial, {"train.max_minutes": minutes})
    distributions = {
        key: _distribution(trial, key, _mapping(spec, f"params.{key}"))
        for key, spec in params.items()
    }
    return SearchSpace(
        path=path,
        metric=metric,
        direction=direction,
        trial_minutes=minutes,
        base=base,
        distributions=distributions,
        prune=pruning is not False,
        startup_trials=_number(settings.get("startup_trials", 2), "pruning.startup_trials", int),
        warmup_epochs=_number(settings.get("warmup_epochs", 0), "pruning.warmup_epochs", int),
    )


def _distribution(config: cfgmod.PipelineConfig, key: str, spec: dict[str, Any]):
    """The Optuna distribution of `params.KEY`, its bounds or choices checked as values of
    the config key."""
    import optuna.distributions as dist

    where = f"params.{key}"
    if key in NOT_TUNABLE:
        raise cfgmod.ConfigError(f"{where}: the tune sets {key} itself")
    if "choices" in spec:
        _known(spec, ("choices",), where)
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise cfgmod.ConfigError(f"{where}.choices: expected a non-empty list, got {choices!r}")
        for i, choice in enumerate(choices):
            if not (choice is None or isinstance(choice, bool | int | float | str)):
                raise cfgmod.ConfigError(f"{where}.choices[{i}]: {choice!r} is not a scalar")
            _check_keys(copy.deepcopy(config), {key: choice}, f"{where}.choices[{i}]")
        return dist.CategoricalDistribution(choices)
    _known(spec, RANGE_KEYS, where)
    missing = [k for k in ("low", "high") if k not in spec]
    if missing:
        raise cfgmod.ConfigError(f"{where}: needs low and high (or choices), has no {missing[0]}")
    try:
        current = _value_at(config, key)
    except AttributeError:  # the loader's error names the unknown key and what is known
        _check_keys(copy.deepcopy(config), {key: spec["low"]}, f"{where}.low")
        raise
    if isinstance(current, bool) or not isinstance(current, int | float):
        raise cfgmod.ConfigError(
            f"{where}: {key} is {type(current).__name__}, not a number: give choices"
        )
    for bound in ("low", "high"):
        _check_keys(copy.deepcopy(config), {key: spec[bound]}, f"{where}.{bound}")
    log = bool(spec.get("log", False))
    try:
        if isinstance(current, int):
            step = spec.get("step", 1)
            return dist.IntDistribution(
                _number(spec["low"], f"{where}.low", int),
                _number(spec["high"], f"{where}.high", int),
                log=log,
                step=_number(step, f"{where}.step", int),
            )
        step = spec.get("step")
        return dist.FloatDistribution(
            float(spec["low"]),
            float(spec["high"]),
            log=log,
            step=None if step is None else _number(step, f"{where}.step", float),
        )
    except ValueError as exc:  # optuna: low > high, log of a range with 0, log with step
        if isinstance(exc, cfgmod.ConfigError):
            raise
        raise cfgmod.ConfigError(f"{where}: {exc}") from exc


def _check_keys(config: cfgmod.PipelineConfig, values: dict[str, Any], where: str) -> None:
    try:
        cfgmod.set_values(config, values)
    except cfgmod.ConfigError as exc:
        raise cfgmod.ConfigError(f"{where}: {exc}") from exc


def _value_at(config: Any, key: str) -> Any:
    for part in key.split("."):
        config = getattr(config, part)
    return config


def _known(values: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    unknown = [k for k in values if k not in known]
    if unknown:
        raise cfgmod.ConfigError(
            f"{where}: unknown key '{unknown[0]}' (known here: {', '.join(known)})"
        )


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise cfgmod.ConfigError(f"{where}: expected a mapping, got {value!r}")
    return {str(k): v for k, v in value.items()}


def _number(value: Any, where: str, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise cfgmod.ConfigError(f"{where}: expected a number, got {value!r}")
    if kind is int and not float(value).is_integer():
        raise cfgmod.ConfigError(f"{where}: expected an integer, got {value!r}")
    return kind(value)
