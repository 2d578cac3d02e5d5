"""Exact resume: a training process killed mid-run goes on from its last checkpoint, in the
same MLflow run, with the learning-rate schedule, the time spent against the budget and
early stopping's best weights as they were."""

import json
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from helpers import (
    ROOT,
    TINY_SEGMENTATION,
    latest_checkpoint_epoch,
    set_args,
    subprocess_env,
    tfpipe,
)

from pipelines.core.callbacks import ResumableEarlyStopping, TrainingClock
from pipelines.core.resume import TrainingCheckpoint, restore_training

BUDGET_MINUTES = 0.75


@pytest.mark.slow
def test_kill_and_resume_under_a_time_budget(tmp_path):
    """Kill a `cosine_budget` run after its second epoch; the resumed run continues the
    decay where it was (the rate never goes back up) and its training time, both
    processes together, stays within the budget."""
    from mlflow.tracking import MlflowClient

    args = [
        "run",
        "segmentation",
        "--workdir",
        str(tmp_path),
        *set_args(
            [
                *TINY_SEGMENTATION,
                "train.epochs=500",
                "data.lexicon=none",
                "run_name=resumable",
                "train.early_stopping_patience=0",
                "train.schedule.name=cosine_budget",
                f"train.max_minutes={BUDGET_MINUTES}",
                "train.learning_rate=0.01",
            ]
        ),
    ]
    checkpoint = tmp_path / "state" / "segmentation" / "resumable" / "checkpoint"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines", *args],
        cwd=ROOT,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    killed_after = None
    while time.monotonic() < deadline and proc.poll() is None:
        if latest_checkpoint_epoch(checkpoint) >= 2:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed_after = latest_checkpoint_epoch(checkpoint)
            break
        time.sleep(0.05)
    assert killed_after is not None, "training finished or stalled before it could be killed"
    name = (checkpoint / "latest").read_text().strip()
    saved_clock = json.loads((checkpoint / name / "state.json").read_text())["clock"]
    heartbeat = json.loads((checkpoint / "clock.json").read_text())["elapsed_seconds"]
    spent = max(heartbeat, saved_clock["elapsed_seconds"])  # at least, when killed

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("segmentation").experiment_id
    (run,) = client.search_runs([experiment])
    assert run.info.status == "RUNNING"  # killed: nobody closed it
    before = sorted(
        (p.step, p.value) for p in client.get_metric_history(run.info.run_id, "learning_rate")
    )

    second = tfpipe(*args)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"resuming after epoch {killed_after}" in second.stdout
    assert "Epoch 1/" not in second.stdout

    runs = client.search_runs([experiment])
    assert [r.info.run_id for r in runs] == [run.info.run_id]  # the same run, continued
    final = runs[0]
    assert final.info.status == "FINISHED"
    rates = sorted(
        (p.step, p.value) for p in client.get_metric_history(run.info.run_id, "learning_rate")
    )
    assert rates[: len(before)] == before
    steps = [s for s, _ in rates]
    assert steps == sorted(set(steps)) and steps[0] == 1  # one value per epoch, no repeats
    values = [v for _, v in rates]
    # The budget-paced cosine only decays: a restart from zero would jump back to 0.01.
    assert all(b <= a + 1e-9 for a, b in zip(values, values[1:], strict=False)), values
    assert values[len(before)] <= before[-1][1]
    seconds = final.data.metrics["train_seconds"]
    assert spent < seconds <= BUDGET_MINUTES * 60 * 1.1


class _Scores(keras.callbacks.Callback):
    """Puts a scripted validation score into each epoch's logs."""

    def __init__(self, scores):
        super().__init__()
        self.scores = scores

    def on_epoch_end(self, epoch, logs=None):
        logs["val_score"] = self.scores[epoch]


class _Crash(keras.callbacks.Callback):
    def __init__(self, after_epoch):
        super().__init__()
        self.after_epoch = after_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.after_epoch:
            raise KeyboardInterrupt("killed")


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(0.05), "mse")
    return model


def _callbacks(folder, scores, crash_after=None):
    stopping = ResumableEarlyStopping(
        monitor="val_score", mode="max", patience=50, restore_best_weights=True
    )
    clock = TrainingClock(heartbeat=folder / "clock.json")
    listed = [_Scores(scores), stopping, clock, TrainingCheckpoint(folder, clock, stopping)]
    if crash_after:
        listed.append(_Crash(crash_after))
    return stopping, clock, listed


def test_best_weights_and_clock_survive_a_restart(tmp_path):
    """The best epoch came before the crash: the resumed run still ends on its weights,
    its optimizer step continues, and its clock starts from the time already spent."""
    x, y = np.random.default_rng(0).normal(size=(32, 3)), np.ones((32, 2))
    scores = [0.2, 0.9, 0.5, 0.4, 0.3]  # best: epoch 2, before the crash after epoch 3
    best = {}

    class Keep(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            best.setdefault(epoch, [w.copy() for w in self.model.get_weights()])

    model = _model()
    _, clock, listed = _callbacks(tmp_path, scores, crash_after=3)
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[Keep(), *listed])
    steps_at_crash = int(model.optimizer.iterations.numpy())
    spent = json.loads((tmp_path / "clock.json").read_text())["elapsed_seconds"]
    assert 0 < spent <= clock.elapsed

    model = _model()
    stopping, clock, listed = _callbacks(tmp_path, scores)
    initial = restore_training(tmp_path, model, clock, stopping)
    assert initial == 3
    assert int(model.optimizer.iterations.numpy()) == steps_at_crash
    assert clock.elapsed >= spent - 1e-6
    history = model.fit(
        x, y, epochs=5, initial_epoch=initial, batch_size=8, verbose=0, callbacks=listed
    )
    assert history.epoch == [3, 4]
    assert stopping.best_epoch == 1
    for got, want in zip(model.get_weights(), best[1], strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_half_written_checkpoint_is_never_read(tmp_path):
    """Only a checkpoint named in `latest` counts; a folder left mid-write does not."""
    x, y = np.ones((8, 3)), np.ones((8, 2))
    model = _model()
    _, _, listed = _callbacks(tmp_path, [0.1, 0.2, 0.3])
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=listed)
    (tmp_path / ".epoch-0003.tmp").mkdir()  # what a kill during the third save leaves
    (tmp_path / ".epoch-0003.tmp" / "training.weights.h5").write_bytes(b"partial")
    model = _model()
    _, clock, _ = _callbacks(tmp_path, [0.1, 0.2, 0.3])
    assert restore_training(tmp_path, model, clock) == 2
    assert sorted(p.name for p in tmp_path.glob("epoch-*")) == ["epoch-0002"]
