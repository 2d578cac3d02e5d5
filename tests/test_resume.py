"""A training process killed mid-run resumes from its last checkpoint and continues the
same MLflow run when started again with the same workdir and run name."""

import json
import signal
import subprocess
import sys
import time

from helpers import ROOT, TINY_SEGMENTATION, set_args, subprocess_env, tfpipe

EPOCHS = 6


def test_kill_and_resume(tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    args = ["run", "segmentation", "--workdir", str(tmp_path),
            *set_args([*TINY_SEGMENTATION, f"train.epochs={EPOCHS}", "data.lexicon=none",
                       "run_name=resumable", "train.early_stopping_patience=0"])]
    metadata = tmp_path / "state" / "segmentation" / "resumable" / "checkpoint" / (
        "training_metadata.json")
    proc = subprocess.Popen([sys.executable, "-m", "pipelines", *args], cwd=ROOT,
                            env=subprocess_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    killed_after = None
    while time.monotonic() < deadline and proc.poll() is None:
        if metadata.exists():
            try:
                epoch = json.loads(metadata.read_text())["epoch"]
            except (ValueError, KeyError):
                epoch = -1
            if epoch >= 1:  # two epochs done and checkpointed
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed_after = epoch
                break
        time.sleep(0.1)
    assert killed_after is not None, "training finished or stalled before it could be killed"
    assert killed_after < EPOCHS - 1

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("segmentation").experiment_id])
    assert run.info.status == "RUNNING"  # killed: nobody closed it

    second = tfpipe(*args)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "Epoch 1/" not in second.stdout  # started from the checkpoint, not from scratch
    assert f"Epoch {EPOCHS}/{EPOCHS}" in second.stdout

    runs = client.search_runs([client.get_experiment_by_name("segmentation").experiment_id])
    assert [r.info.run_id for r in runs] == [run.info.run_id]  # the same run, continued
    assert runs[0].info.status == "FINISHED"
    steps = sorted(p.step for p in client.get_metric_history(run.info.run_id, "loss"))
    assert steps[: killed_after + 1] == list(range(1, killed_after + 2))
    assert steps[-1] == EPOCHS and len(set(steps)) == len(steps) >= EPOCHS - 1
    assert "test_f1" in client.get_run(run.info.run_id).data.metrics
    mlflow.set_tracking_uri(None)
