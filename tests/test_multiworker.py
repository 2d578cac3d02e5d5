"""Multi-worker training on 127.0.0.1: two workers train one run (one MLflow run, one
export, equal final weights, as good as one process on the same global batch), and a
worker killed mid-training and started again rejoins; the job resumes from the checkpoint."""

import re
import signal
import subprocess
import sys
import time

import pytest
from helpers import (
    DATA,
    ROOT,
    TINY_SEGMENTATION,
    latest_checkpoint_epoch,
    set_args,
    subprocess_env,
    tfpipe,
)

from pipelines.core.launcher import free_ports, tf_config

pytestmark = pytest.mark.slow

# Per-worker batch 16: two workers train on global batches of 32, at the same learning
# rate, like the one-process run of `segmentation_run` (TINY_SEGMENTATION at batch 32).
TWO_WORKERS = [*TINY_SEGMENTATION, "train.batch_size=16", "train.scale_lr_with_replicas=false"]
DIGEST = re.compile(r"worker (\d): final weights sha256 ([0-9a-f]{64})")


def _runs(workdir):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir}/mlflow.db")
    experiment = client.get_experiment_by_name("segmentation")
    return client, client.search_runs([experiment.experiment_id])


def _test_f1(output: str) -> float:
    return float(re.search(r"test_f1: ([0-9.]+)", output).group(1))


def test_two_local_workers_train_one_run(segmentation_run, tmp_path):
    two = tmp_path / "two"
    proc = tfpipe(
        "run", "segmentation", "--workdir", str(two), "--local-workers", "2", *set_args(TWO_WORKERS)
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    worker_log = (two / "logs" / "worker-1.log").read_text()
    digests = dict(DIGEST.findall(proc.stdout) + DIGEST.findall(worker_log))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"]
    assert "test_f1" not in worker_log and "exported" not in worker_log  # chief only

    client, (run,) = _runs(two)
    assert run.info.status == "FINISHED"
    assert run.data.tags["replicas"] == "2"
    assert run.data.tags["final_weights_sha256"] == digests["0"]
    assert [p.step for p in client.get_metric_history(run.info.run_id, "val_f1")] == [1, 2, 3]
    assert sorted(p.name for p in (two / "exports" / "segmentation").iterdir()) == ["1"]

    # One process (the shared `segmentation_run`), same data, seed and global batch (32).
    # The two workers group the examples into global batches differently (each takes every
    # other 16-example batch), so the runs are not bit-equal: allow 0.02 F1 on the
    # 1,000-character test split.
    _, (alone,) = _runs(segmentation_run)
    assert _test_f1(proc.stdout) >= alone.data.metrics["test_f1"] - 0.02


def _small_corpus(folder, train_lines: int, test_lines: int):
    """A data dir whose `cws/` sample holds only the first lines of the bundled one."""
    for name, count in (("sample_train.txt", train_lines), ("sample_test.txt", test_lines)):
        lines = (DATA / "cws" / name).read_text(encoding="utf-8").splitlines()[:count]
        (folder / "cws").mkdir(parents=True, exist_ok=True)
        (folder / "cws" / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_killed_worker_rejoins_and_the_job_resumes(tmp_path):
    """SIGKILL the non-chief after the first epoch's checkpoint, start it again with the
    same TF_CONFIG: the chief re-forms the cluster, both resume from the checkpoint, and
    the job ends with one finished MLflow run and one export. Nothing here checks how well
    it learns: a third of the sample and no lexicon keep each epoch and process start short
    (still several steps per epoch, so the kill lands inside the second one)."""
    cluster = [f"127.0.0.1:{port}" for port in free_ports(2)]
    data = _small_corpus(tmp_path / "data", train_lines=200, test_lines=40)
    command = [
        sys.executable,
        "-m",
        "pipelines",
        "run",
        "segmentation",
        "--workdir",
        str(tmp_path),
        "--data-dir",
        str(data),
        *set_args(
            [
                *TWO_WORKERS,
                "train.epochs=2",
                "run_name=rejoin",
                "train.strategy=multiworker",
                "data.lexicon=none",
            ]
        ),
    ]

    def start(index: int, log):
        env = subprocess_env(
            TF_CONFIG=tf_config(cluster, index),
            TF_NUM_INTRAOP_THREADS="1",
            TF_NUM_INTEROP_THREADS="1",
        )
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )

    checkpoint = tmp_path / "state" / "segmentation" / "rejoin" / "checkpoint"
    chief_log, worker_log = tmp_path / "chief.log", tmp_path / "worker.log"
    with open(chief_log, "w") as chief_out, open(worker_log, "w") as worker_out:
        chief, worker = start(0, chief_out), start(1, worker_out)
        try:
            deadline = time.monotonic() + 400
            while latest_checkpoint_epoch(checkpoint) < 1 and time.monotonic() < deadline:
                assert chief.poll() is None and worker.poll() is None
                time.sleep(0.05)
            killed_after = latest_checkpoint_epoch(checkpoint)
            assert killed_after == 1, "no checkpoint to resume from"
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            worker = start(1, worker_out)
            assert chief.wait(timeout=400) == 0, chief_log.read_text()[-4000:]
            worker.wait(timeout=60)
        finally:
            for proc in (chief, worker):
                if proc.poll() is None:
                    proc.kill()
    out = chief_log.read_text()
    assert "lost a peer" in out
    resumed = [int(n) for n in re.findall(r"resuming after epoch (\d+)", out)]
    assert resumed and resumed[-1] >= killed_after  # not redone from scratch
    digests = dict(DIGEST.findall(out) + DIGEST.findall(worker_log.read_text()))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"]

    client, (run,) = _runs(tmp_path)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["epochs_run"] == 2
    steps = [p.step for p in client.get_metric_history(run.info.run_id, "val_f1")]
    assert sorted(set(steps)) == [1, 2]
    assert sorted(p.name for p in (tmp_path / "exports" / "segmentation").iterdir()) == ["1"]
