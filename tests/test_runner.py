"""The runner in-process: seeded runs repeat exactly; bad input fails clearly; exports are
atomic and versions count up."""

import json

import keras
import pytest
import tensorflow as tf
from helpers import DATA, TINY_SEGMENTATION, bfloat16_ops, set_args, tfpipe

from pipelines.core.export import export_version, latest_export, versions
from pipelines.core.runner import load_task_config, run_pipeline
from pipelines.core.task import Serving


@pytest.mark.slow
def test_same_seed_same_metrics(tmp_path):
    overrides = [
        *TINY_SEGMENTATION,
        "train.epochs=2",
        "data.lexicon=none",
        "train.deterministic=true",
        "train.seed=7",
        "export.enabled=false",
    ]
    results = []
    for name in ("a", "b"):
        config = load_task_config("segmentation", None, [*overrides, f"run_name={name}"])
        results.append(run_pipeline("segmentation", config, DATA, tmp_path / name))
    assert results[0].test_metrics == results[1].test_metrics
    assert results[0].export_dir is None


@pytest.mark.slow
def test_a_run_trains_in_its_precision_and_exports_in_the_serving_one(tmp_path):
    """`export.mixed_precision` set: the run trains in float32 and its export computes in
    bfloat16, segments text, and says so; the policy is float32 again afterwards."""
    overrides = [
        *TINY_SEGMENTATION,
        "train.epochs=1",
        "data.lexicon=none",
        "export.mixed_precision=mixed_bfloat16",
        "export.warmup_requests=1",
    ]
    config = load_task_config("segmentation", None, overrides)
    result = run_pipeline("segmentation", config, DATA, tmp_path)
    assert keras.mixed_precision.global_policy().name == "float32"
    meta = json.loads((result.export_dir / "assets.extra" / "tfpipelines.json").read_text())
    assert meta["mixed_precision"] == "mixed_bfloat16"
    assert bfloat16_ops(result.export_dir) > 5
    serve = tf.saved_model.load(str(result.export_dir)).signatures["serving_default"]
    words = next(iter(serve(text=tf.constant(["我们在北京。", ""])).values())).numpy()
    assert len(words) == 2


def _tiny_serving() -> Serving:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])

    def serve(x):
        return {"y": model(x)}

    return Serving(serve, {"x": tf.TensorSpec([None, 2], tf.float32)}, [model])


def test_export_versions_count_up_and_failures_leave_nothing(tmp_path):
    first = export_version(_tiny_serving(), tmp_path, "toy", warmup_inputs={"x": [[1.0, 2.0]]})
    second = export_version(_tiny_serving(), tmp_path, "toy")
    assert (first.name, second.name) == ("1", "2")
    assert latest_export(tmp_path, "toy") == second

    def broken(x):
        raise RuntimeError("boom while tracing")

    bad = Serving(broken, {"x": tf.TensorSpec([None, 2], tf.float32)}, [])
    with pytest.raises(RuntimeError, match="boom"):
        export_version(bad, tmp_path, "toy")
    assert versions(tmp_path / "toy") == [1, 2]
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == ["1", "2"]
    assert "name: 'toy'" in (tmp_path / "models.config").read_text()
    loaded = tf.saved_model.load(str(second)).signatures["serving_default"]
    assert loaded(x=tf.constant([[1.0, 2.0]]))["y"].shape == (1, 1)


def test_unknown_config_key_fails_before_training(tmp_path):
    proc = tfpipe("run", "segmentation", "--workdir", str(tmp_path), "--set", "model.unitz=3")
    assert proc.returncode == 2
    assert "unknown config key 'model.unitz'" in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_bad_training_file_names_file_and_line(tmp_path):
    data = tmp_path / "data"
    (data / "cws").mkdir(parents=True)
    (data / "cws" / "train.txt").write_bytes("中国  人民\n".encode() + b"\xc3\x28\n")
    (data / "cws" / "test.txt").write_text("中国  人民\n", encoding="utf-8")
    proc = tfpipe(
        "run",
        "segmentation",
        "--workdir",
        str(tmp_path / "w"),
        "--data-dir",
        str(data),
        *set_args(["data.train=cws/train.txt", "data.test=cws/test.txt"]),
    )
    assert proc.returncode == 2
    assert "train.txt:2: not valid UTF-8" in proc.stderr
