"""Tracking against a real `mlflow server` process on 127.0.0.1, read back with MlflowClient."""

import pytest
from helpers import TINY_SEGMENTATION, set_args, subprocess_env, tfpipe
from servers import mlflow_server as start_mlflow_server


@pytest.fixture
def mlflow_server(tmp_path):
    with start_mlflow_server(f"sqlite:///{tmp_path}/server.db", tmp_path / "artifacts") as url:
        yield url


def test_run_is_tracked_on_a_real_server(mlflow_server, tmp_path):
    from mlflow.tracking import MlflowClient

    workdir = tmp_path / "w"
    proc = tfpipe("run", "segmentation", "--workdir", str(workdir),
                  *set_args([*TINY_SEGMENTATION, "data.lexicon=none", "run_name=tracked"]),
                  env=subprocess_env(MLFLOW_TRACKING_URI=mlflow_server))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not (workdir / "mlflow.db").exists()  # the server, not the embedded store

    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("segmentation")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "tracked"
    assert run.data.params["model.units"] == "32"
    assert run.data.params["data.lexicon"] == "none"
    assert run.data.tags["pipeline"] == "segmentation"
    assert len(run.data.tags["data_fingerprint"]) == 16
    assert run.data.tags["git_commit"]
    assert 0.0 < run.data.metrics["test_f1"] <= 1.0
    assert run.data.metrics["train_seconds"] > 0
    for key in ("loss", "val_loss", "val_f1", "learning_rate"):
        history = client.get_metric_history(run.info.run_id, key)
        assert sorted(p.step for p in history) == [1, 2, 3], key
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "model", "plots", "savedmodel"} <= artifacts
    assert {a.path for a in client.list_artifacts(run.info.run_id, "plots")} == {
        "plots/training_curves.png"}
    kept = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"model/weights.npz", "model/config.yaml", "model/assets"} <= kept
    assert "model/assets/chars.txt" in {
        a.path for a in client.list_artifacts(run.info.run_id, "model/assets")}
    assert "savedmodel/saved_model.pb" in {
        a.path for a in client.list_artifacts(run.info.run_id, "savedmodel")}
    local = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    text = open(local, encoding="utf-8").read()
    assert "units: 32" in text and "lexicon: none" in text
