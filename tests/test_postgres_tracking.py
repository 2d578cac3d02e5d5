"""Tracking against a real `mlflow server` on 127.0.0.1 whose backend store is a real
PostgreSQL cluster: a pipeline run tracked there and read back with MlflowClient and from
PostgreSQL itself, its export registered, promoted, and read the way a deployment reads
`models:/segmentation@production`. (The server on SQLite tested nothing more: this test
replaced it, one tiny training run fewer.)"""

import subprocess
import sys

import pytest
from helpers import (
    TINY_SEGMENTATION,
    fresh_signatures,
    set_args,
    subprocess_env,
    tfpipe,
)
from servers import mlflow_server, postgres_cluster

from pipelines.cli import build_parser
from pipelines.core.tracking import NotTracked

pytestmark = pytest.mark.slow

SENTENCE = "他们在北京参观博物馆。"


@pytest.fixture(scope="module")
def postgres():
    with postgres_cluster() as url:
        yield url


@pytest.fixture(scope="module")
def server(postgres, tmp_path_factory):
    # SQLAlchemy 2.1's default PostgreSQL driver is psycopg 3: name psycopg2 explicitly.
    store = postgres.replace("postgresql://", "postgresql+psycopg2://", 1)
    with mlflow_server(store, tmp_path_factory.mktemp("pg-artifacts")) as url:
        yield url


@pytest.fixture(scope="module")
def registered_run(server, tmp_path_factory):
    """One tiny segmentation run against the server, its export registered."""
    workdir = tmp_path_factory.mktemp("pg-run")
    proc = tfpipe(
        "run",
        "segmentation",
        "--workdir",
        str(workdir),
        *set_args(
            [
                *TINY_SEGMENTATION,
                "data.lexicon=none",
                "run_name=on-postgres",
                "export.register=true",
            ]
        ),
        env=subprocess_env(MLFLOW_TRACKING_URI=server),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "registered" in proc.stdout and "version 1" in proc.stdout, proc.stdout[-2000:]
    return workdir


def test_run_is_tracked_in_postgres(postgres, server, registered_run, tmp_path):
    import psycopg2
    from mlflow.tracking import MlflowClient

    assert not (registered_run / "mlflow.db").exists()  # the server, not the embedded store
    client = MlflowClient(server)
    experiment = client.get_experiment_by_name("segmentation")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "on-postgres"
    assert run.data.params["model.units"] == "32"
    assert run.data.params["data.lexicon"] == "none"
    assert run.data.params["export.register"] == "True"
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
        "plots/training_curves.png"
    }
    kept = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert {"model/weights.npz", "model/config.yaml", "model/assets"} <= kept
    assert "model/assets/chars.txt" in {
        a.path for a in client.list_artifacts(run.info.run_id, "model/assets")
    }
    assert "savedmodel/saved_model.pb" in {
        a.path for a in client.list_artifacts(run.info.run_id, "savedmodel")
    }
    local = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    text = open(local, encoding="utf-8").read()
    assert "units: 32" in text and "lexicon: none" in text

    # The rows are really in PostgreSQL.
    with psycopg2.connect(postgres) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT name, status FROM runs WHERE run_uuid = %s", (run.info.run_id,))
        assert cursor.fetchall() == [("on-postgres", "FINISHED")]
        cursor.execute(
            "SELECT value FROM params WHERE run_uuid = %s AND key = 'model.units'",
            (run.info.run_id,),
        )
        assert cursor.fetchall() == [("32",)]
        cursor.execute(
            "SELECT value FROM latest_metrics WHERE run_uuid = %s AND key = 'test_f1'",
            (run.info.run_id,),
        )
        assert cursor.fetchone()[0] == pytest.approx(run.data.metrics["test_f1"])
        cursor.execute(
            "SELECT version, source, run_id FROM model_versions WHERE name = 'segmentation'"
        )
        assert cursor.fetchall() == [(1, f"runs:/{run.info.run_id}/savedmodel", run.info.run_id)]


def promote(capsys, *argv: str) -> str:
    args = build_parser().parse_args(["promote", *argv])
    assert args.func(args) == 0
    return capsys.readouterr().out.strip()


def test_registry_promote_and_deployment_reads_production(
    server, registered_run, tmp_path, monkeypatch, capsys
):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(server)
    (run,) = client.search_runs([client.get_experiment_by_name("segmentation").experiment_id])
    first = client.get_model_version("segmentation", "1")
    assert first.run_id == run.info.run_id
    assert first.tags["export_version"] == "1"
    assert first.tags["export_dir"] == str(registered_run / "exports" / "segmentation" / "1")

    env = subprocess_env(MLFLOW_TRACKING_URI=server)
    # A re-export with other serving options becomes version 2, from `savedmodel-v2/`.
    proc = tfpipe(
        "export",
        "segmentation",
        "--run",
        run.info.run_id,
        "--workdir",
        str(registered_run),
        "--set",
        "serving.separator=/",
        "--set",
        "export.register=true",
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    second = client.get_model_version("segmentation", "2")
    assert second.source == f"runs:/{run.info.run_id}/savedmodel-v2"
    assert second.tags["export_version"] == "2"

    # `tfpipe promote` in this process (its CLI errors are checked in test_compare.py);
    # --force: these versions were registered without a release gate, so are not blessed.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    assert promote(capsys, "segmentation", "1", "--alias", "production", "--force") == (
        "model 'segmentation': alias 'production' moved to version 1 "
        "(models:/segmentation@production)"
    )
    assert "moved from version 1 to version 2" in promote(capsys, "segmentation", "2", "--force")
    assert client.get_model_version_by_alias("segmentation", "production").version == "2"
    with pytest.raises(
        NotTracked,
        match=r"registered model 'segmentation' has no version "
        r"99 \(versions: 1, 2\)",
    ):
        promote(capsys, "segmentation", "99")
    with pytest.raises(NotTracked, match="no registered model 'segmentaton'"):
        promote(capsys, "segmentaton", "1")
    assert client.get_model_version_by_alias("segmentation", "production").version == "2"

    # What a deployment does: fetch models:/NAME@production (no project code), then serve it.
    target = tmp_path / "deployed"
    fetch = (
        "import sys, mlflow.artifacts; print(mlflow.artifacts.download_artifacts("
        "'models:/segmentation@production', dst_path=sys.argv[1]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", fetch, str(target)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (target / "saved_model.pb").exists()
    result = fresh_signatures(target, {"serving_default": {"text": [SENTENCE]}}, tmp_path)
    (segmented,) = result["calls"]["serving_default"]["segmented"]["value"]
    assert segmented.replace("/", "") == SENTENCE and "/" in segmented  # version 2's separator
