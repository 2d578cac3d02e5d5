"""Distribution: MirroredStrategy on two logical CPU devices learns; scaling rules hold."""

import re

import pytest
from helpers import TINY_SEGMENTATION, set_args, tfpipe

from pipelines.core.strategy import scaled


def test_scaling_with_replicas():
    assert scaled(32, 1e-3, 4, True) == (128, 4e-3)
    assert scaled(32, 1e-3, 4, False) == (128, 1e-3)
    assert scaled(16, 2e-3, 1, True) == (16, 2e-3)


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_learns(tmp_path):
    from mlflow.tracking import MlflowClient

    proc = tfpipe(
        "run",
        "segmentation",
        "--workdir",
        str(tmp_path),
        *set_args(
            [
                *TINY_SEGMENTATION,
                "data.lexicon=none",
                "train.strategy=mirrored",
                "train.cpu_replicas=2",
            ]
        ),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "MirroredStrategy, 2 replica(s)" in proc.stdout
    f1 = float(re.search(r"test_f1: ([0-9.]+)", proc.stdout).group(1))
    assert f1 > 0.8  # an untrained tagger scores well under 0.5 on the sample corpus
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("segmentation").experiment_id])
    assert run.data.tags["replicas"] == "2"
    losses = [p.value for p in client.get_metric_history(run.info.run_id, "loss")]
    assert losses[-1] < losses[0]
    assert (tmp_path / "exports" / "segmentation" / "1" / "saved_model.pb").exists()


def test_one_device_runs_under_the_default_strategy():
    """`auto` on one device uses no strategy object, so Keras iterates datasets directly;
    `onedevice` still asks for one explicitly."""
    import tensorflow as tf

    from pipelines.core.strategy import make_strategy

    auto = make_strategy("auto")
    assert auto is tf.distribute.get_strategy() and auto.num_replicas_in_sync == 1
    with auto.scope():
        assert not tf.distribute.has_strategy()
    assert isinstance(make_strategy("onedevice"), tf.distribute.OneDeviceStrategy)
    assert make_strategy("default") is tf.distribute.get_strategy()
