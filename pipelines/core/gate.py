"""The release gate (`export.gate`): whether a run's test metrics are good enough to be
exported, registered and blessed, in absolute terms and against the version that holds the
baseline alias (`production`). A run that fails it exports nothing; `tfpipe promote` moves
an alias only to a blessed version (or with `--force`).

Direction per metric: losses and the task's `lower_is_better` metrics must not exceed
their bound, every other metric must reach it. A comparison reads like
`0.81 < 0.9 (absolute)` or `0.86 >= 0.86 (production v3: 0.87 - 0.01)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from pipelines.core.config import ConfigError, GateConfig

TEST_PREFIX = "test_"


@dataclasses.dataclass
class Baseline:
    """The version that holds the baseline alias, and its run's test metrics."""

    alias: str
    version: str
    run_id: str | None
    metrics: dict[str, float]


@dataclasses.dataclass
class GateResult:
    """The gate's verdict on one run: the comparisons by metric and what failed."""

    passed: bool
    comparisons: dict[str, str]  # metric -> "0.81 < 0.9 (absolute); ..."
    failed: list[str]
    baseline: str  # which version the relative bounds compared with, or why none

    def tags(self) -> dict[str, str]:
        """Run and model-version tags that record the comparison."""
        return {
            "gate.passed": str(self.passed).lower(),
            "gate.baseline": self.baseline,
            **{f"gate.{metric}": text for metric, text in self.comparisons.items()},
        }

    def message(self, pipeline: str) -> str:
        """What a user reads: the verdict and each failing metric's comparison."""
        if self.passed:
            return f"[{pipeline}] gate passed: " + "; ".join(
                f"{m}: {t}" for m, t in self.comparisons.items()
            )
        lines = [f"[{pipeline}] gate failed: nothing exported or registered"]
        lines += [f"  {metric}: {self.comparisons[metric]}" for metric in self.failed]
        return "\n".join(lines)


def lower_is_better(metric: str, task_lower: Iterable[str]) -> bool:
    """Whether a logged metric (`test_wer`) improves downwards: losses, and the task's
    `lower_is_better` names (as MLflow logs them: `@` becomes `_at_`)."""
    name = metric.removeprefix(TEST_PREFIX)
    return "loss" in name or name in {m.replace("@", "_at_") for m in task_lower}


def check_gate_names(gate: GateConfig) -> None:
    """Before training: every gated metric is a test metric (`test_...`)."""
    for key in ("metrics", "max_regression"):
        wrong = sorted(m for m in getattr(gate, key) if not m.startswith(TEST_PREFIX))
        if wrong:
            raise ConfigError(
                f"export.gate.{key}: {', '.join(wrong)} are not test metrics (the gate reads "
                f"the metrics a run logs as {TEST_PREFIX}NAME, e.g. test_f1)"
            )


def judge(
    gate: GateConfig,
    metrics: dict[str, float],
    task_lower: Iterable[str],
    baseline: Baseline | None,
    run: str = "the run",
) -> GateResult:
    """Compare `metrics` (a run's `test_*` metrics) with the gate's bounds; the relative
    bounds with `baseline` (None: no version holds the alias, those checks pass)."""
    gated = sorted(set(gate.metrics) | set(gate.max_regression))
    unknown = [m for m in gated if m not in metrics]
    if unknown:
        raise ConfigError(
            f"export.gate names {', '.join(unknown)}, which {run} did not log (it has: "
            f"{', '.join(sorted(metrics)) or 'no test metrics'}); the trained model stays "
            "with the run: `tfpipe export PIPELINE --run RUN_ID` with a corrected gate "
            "exports it"
        )
    task_lower = tuple(task_lower)
    comparisons: dict[str, list[str]] = {}
    failed: list[str] = []
    for metric in gated:
        lower = lower_is_better(metric, task_lower)
        value = metrics[metric]
        parts, ok = [], True
        if metric in gate.metrics:
            bound = gate.metrics[metric]
            passed = value <= bound if lower else value >= bound
            parts.append(f"{_compare(value, bound, lower, passed)} (absolute)")
            ok &= passed
        if metric in gate.max_regression:
            text, passed = _relative(metric, value, gate.max_regression[metric], lower, baseline)
            parts.append(text)
            ok &= passed
        comparisons[metric] = "; ".join(parts)
        if not ok:
            failed.append(metric)
    if not gate.max_regression:
        where = "none (no relative bounds)"
    elif baseline is None:
        where = f"no baseline: no version holds '{gate.baseline_alias}'"
    else:
        where = f"{baseline.alias}: version {baseline.version} (run {baseline.run_id})"
    return GateResult(not failed, comparisons, failed, where)


def _relative(
    metric: str, value: float, allowed: float, lower: bool, baseline: Baseline | None
) -> tuple[str, bool]:
    if baseline is None:
        return "no baseline (relative check passes)", True
    if metric not in baseline.metrics:
        return (
            f"no baseline value ({baseline.alias} v{baseline.version} has no {metric}; "
            "relative check passes)"
        ), True
    base = baseline.metrics[metric]
    bound = base + allowed if lower else base - allowed
    passed = value <= bound if lower else value >= bound
    # Worsening is up for lower-is-better metrics, down for the others.
    worse = allowed if lower else -allowed
    step = f"{'-' if worse < 0 else '+'} {_num(abs(worse))}"
    where = f"{baseline.alias} v{baseline.version}: {_num(base)} {step}"
    return f"{_compare(value, bound, lower, passed)} ({where})", passed


def _compare(value: float, bound: float, lower: bool, passed: bool) -> str:
    if lower:
        op = "<=" if passed else ">"
    else:
        op = ">=" if passed else "<"
    return f"{_num(value)} {op} {_num(bound)}"


def _num(value: float) -> str:
    return f"{value:.6g}"


def logged_test_metrics(client, run_id: str) -> dict[str, float]:
    """The `test_*` metrics logged to `run_id`."""
    metrics = client.get_run(run_id).data.metrics
    return {k: v for k, v in metrics.items() if k.startswith(TEST_PREFIX)}


def find_baseline(client, model_name: str, alias: str) -> Baseline | None:
    """The version of registered model `model_name` that `alias` names, with its run's test
    metrics; None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise
    metrics = logged_test_metrics(client, version.run_id) if version.run_id else {}
    return Baseline(alias, str(version.version), version.run_id, metrics)


def check_gate(
    workdir: Path, gate: GateConfig, model_name: str, task_lower: Iterable[str], run_id: str
) -> GateResult:
    """Judge run `run_id`'s logged test metrics against `gate`, the relative bounds against
    the version of `model_name` holding `gate.baseline_alias`."""
    from mlflow.tracking import MlflowClient

    from pipelines.core.tracking import tracking_uri

    client = MlflowClient(tracking_uri(workdir))
    baseline = None
    if gate.max_regression:
        baseline = find_baseline(client, model_name, gate.baseline_alias)
    return judge(gate, logged_test_metrics(client, run_id), task_lower, baseline, f"run {run_id}")
