"""The release gate's verdicts (directions, absolute and relative bounds, what the tags
say), its config keys, and the TF Serving files a release writes. No MLflow here: the
gate against a real tracking server is in test_release.py."""

import pytest

from pipelines.core.config import (
    BatchingConfig,
    ConfigError,
    GateConfig,
    PipelineConfig,
    load_config,
)
from pipelines.core.gate import Baseline, check_gate_names, judge, lower_is_better

SPEECH_LOWER = ("wer", "cer")


def test_directions_losses_and_the_tasks_lower_is_better():
    assert lower_is_better("test_loss", ()) and lower_is_better("test_val_loss", ())
    assert lower_is_better("test_wer", SPEECH_LOWER)
    assert not lower_is_better("test_f1", SPEECH_LOWER)
    assert lower_is_better("test_error_at_5", ("error@5",))  # MLflow logs @ as _at_


def test_absolute_bounds_each_way():
    gate = GateConfig(metrics={"test_f1": 0.9, "test_wer": 0.2})
    result = judge(gate, {"test_f1": 0.81, "test_wer": 0.25}, SPEECH_LOWER, None)
    assert not result.passed and result.failed == ["test_f1", "test_wer"]
    assert result.comparisons == {
        "test_f1": "0.81 < 0.9 (absolute)",
        "test_wer": "0.25 > 0.2 (absolute)",
    }
    ok = judge(gate, {"test_f1": 0.9, "test_wer": 0.2}, SPEECH_LOWER, None)
    assert ok.passed and ok.failed == []  # the bound itself passes
    assert ok.comparisons["test_wer"] == "0.2 <= 0.2 (absolute)"
    tags = ok.tags()
    assert tags["gate.passed"] == "true" and tags["gate.test_f1"] == "0.9 >= 0.9 (absolute)"
    assert tags["gate.baseline"] == "none (no relative bounds)"
    message = result.message("speech")
    assert "gate failed" in message and "test_f1: 0.81 < 0.9 (absolute)" in message


def test_relative_bounds_against_the_baseline():
    gate = GateConfig(max_regression={"test_f1": 0.01, "test_wer": 0.02})
    production = Baseline("production", "3", "abc", {"test_f1": 0.87, "test_wer": 0.30})
    worse = judge(gate, {"test_f1": 0.85, "test_wer": 0.33}, SPEECH_LOWER, production)
    assert worse.failed == ["test_f1", "test_wer"]
    assert worse.comparisons["test_f1"] == "0.85 < 0.86 (production v3: 0.87 - 0.01)"
    assert worse.comparisons["test_wer"] == "0.33 > 0.32 (production v3: 0.3 + 0.02)"
    assert worse.tags()["gate.baseline"] == "production: version 3 (run abc)"
    within = judge(gate, {"test_f1": 0.86, "test_wer": 0.31}, SPEECH_LOWER, production)
    assert within.passed
    # Negative: must improve by that much.
    better = GateConfig(max_regression={"test_f1": -0.01})
    same = judge(better, {"test_f1": 0.87}, (), production)
    assert same.comparisons["test_f1"] == "0.87 < 0.88 (production v3: 0.87 + 0.01)"


def test_no_baseline_passes_the_relative_check_and_says_so():
    gate = GateConfig(metrics={"test_f1": 0.5}, max_regression={"test_f1": 0.0})
    result = judge(gate, {"test_f1": 0.7}, (), None)
    assert result.passed
    assert result.comparisons["test_f1"] == (
        "0.7 >= 0.5 (absolute); no baseline (relative check passes)"
    )
    assert result.baseline == "no baseline: no version holds 'production'"
    old = Baseline("production", "1", "r", {"test_recall": 0.9})
    assert "v1 has no test_f1" in judge(gate, {"test_f1": 0.7}, (), old).comparisons["test_f1"]


def test_unknown_metrics_name_what_the_run_has():
    gate = GateConfig(metrics={"test_f2": 0.9}, max_regression={"test_acc": 0.0})
    with pytest.raises(
        ConfigError,
        match=r"test_acc, test_f2, which run r1 did not log \(it "
        r"has: test_f1, test_recall\)",
    ):
        judge(gate, {"test_f1": 0.8, "test_recall": 0.7}, (), None, "run r1")
    with pytest.raises(ConfigError, match="export.gate.metrics: f1 are not test metrics"):
        check_gate_names(GateConfig(metrics={"f1": 0.9}))


def test_gate_keys_merge_and_are_typed():
    config = load_config(
        PipelineConfig,
        overrides=[
            "export.gate.metrics={test_f1: 0.9, test_recall: 0.5}",
            "export.gate.metrics.test_precision=0.8",
            "export.gate.metrics.test_recall=null",  # removes it
            "export.gate.max_regression.test_f1=1e-2",
            "export.batching.max_batch_size=16",
        ],
    )
    assert config.export.gate.metrics == {"test_f1": 0.9, "test_precision": 0.8}
    assert config.export.gate.max_regression == {"test_f1": 0.01}
    assert config.export.gate.configured and not GateConfig().configured
    assert config.export.batching.max_batch_size == 16
    with pytest.raises(ConfigError, match=r"export.gate.metrics.test_f1: expected a number"):
        load_config(PipelineConfig, overrides=["export.gate.metrics.test_f1=high"])
    with pytest.raises(ConfigError, match="export.gate.metrics: expected a mapping"):
        load_config(PipelineConfig, overrides=["export.gate.metrics=0.9"])


def test_models_config_labels_policy_and_batching(tmp_path):
    from pipelines.core.export import write_models_config

    for version in (1, 2, 3):
        (tmp_path / "segmentation" / str(version)).mkdir(parents=True)
    (tmp_path / "slots" / "1").mkdir(parents=True)
    labels = {"segmentation": {"production": 2, "candidate": 3, "gone": 7}}
    path = write_models_config(tmp_path, "/serve", labels, BatchingConfig(max_batch_size=8))
    text = path.read_text()
    segmentation, slots = text.split("  config {\n")[1:]
    assert "base_path: '/serve/segmentation'" in segmentation
    assert "specific {\n        versions: 2\n        versions: 3\n      }" in segmentation
    assert "key: 'production'\n      value: 2" in segmentation
    assert "key: 'candidate'\n      value: 3" in segmentation
    assert "gone" not in segmentation  # a version that is not exported here
    assert "model_version_policy" not in slots and "version_labels" not in slots
    assert (tmp_path / "batching_parameters.txt").read_text() == (
        "max_batch_size { value: 8 }\n"
        "batch_timeout_micros { value: 2000 }\n"
        "num_batch_threads { value: 4 }\n"
        "max_enqueued_batches { value: 100 }\n"
    )
