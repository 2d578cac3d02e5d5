"""MLflow tracking: an embedded SQLite store in the workdir unless MLFLOW_TRACKING_URI says
otherwise; one experiment per pipeline; a run that resumes after a crash continues the same
MLflow run."""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import keras
import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

RUN_ID_FILE = "mlflow_run_id"
PARENT_TAG = "mlflow.parentRunId"  # what MLflow nests a run under
# What `tfpipe tune` tags: a trial's number and how it ended; the tune's run, its trial count.
TRIAL_TAG, TRIAL_STATE_TAG, TUNE_TRIALS_TAG = "tune.trial", "tune.state", "tune.trials"


class NotTracked(KeyError):
    """A run, param, metric, registered model or version the store does not have; the
    message says what it has (plain, without KeyError's quotes)."""

    def __str__(self) -> str:
        return str(self.args[0])


def tracking_uri(workdir: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(workdir).resolve()}/mlflow.db"


def git_commit() -> str:
    """The project's commit, or "unknown" outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def data_fingerprint(files: Iterable[Path]) -> str:
    """sha256 over the names and bytes of the data files (first 16 hex digits)."""
    digest = hashlib.sha256()
    for path in sorted(Path(f) for f in files):
        digest.update(path.name.encode())
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                digest.update(str(child.relative_to(path)).encode())
                digest.update(child.read_bytes())
        else:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class Tracker:
    """One MLflow run of one pipeline, started fresh or resumed from `state_dir`."""

    def __init__(self, workdir: Path, pipeline: str):
        self.workdir = Path(workdir)
        self.remote = bool(os.environ.get("MLFLOW_TRACKING_URI"))
        self.uri = tracking_uri(self.workdir)
        # An explicit client, no global set_tracking_uri: that would set MLFLOW_TRACKING_URI
        # for the rest of the process and send later runs' artifacts elsewhere.
        self.client = MlflowClient(self.uri)
        self.experiment_id = self._experiment(pipeline)
        self.run_id: str | None = None
        self.resumed = False

    def _experiment(self, pipeline: str) -> str:
        found = self.client.get_experiment_by_name(pipeline)
        if found is not None:
            return found.experiment_id
        location = None
        if not self.remote:
            location = (self.workdir.resolve() / "mlartifacts" / pipeline).as_uri()
        try:
            return self.client.create_experiment(pipeline, artifact_location=location)
        except mlflow.exceptions.MlflowException:  # created concurrently
            return self.client.get_experiment_by_name(pipeline).experiment_id

    def start(self, run_name: str, state_dir: Path, parent_run_id: str | None = None) -> str:
        """Continue the unfinished run recorded in `state_dir`, or start a new one (nested
        under `parent_run_id`, as a tune's trials are under the tune's run)."""
        marker = state_dir / RUN_ID_FILE
        if marker.exists():
            run_id = marker.read_text().strip()
            try:
                run = self.client.get_run(run_id)
                if run.info.status != "FINISHED":
                    self.run_id, self.resumed = run_id, True
                    self.client.update_run(run_id, status="RUNNING")
                    log.info("resuming MLflow run %s", run_id)
                    return run_id
            except mlflow.exceptions.MlflowException:
                log.warning("run %s recorded in %s is gone; starting a new one", run_id, marker)
        tags = {PARENT_TAG: parent_run_id} if parent_run_id else None
        run = self.client.create_run(self.experiment_id, run_name=run_name, tags=tags)
        self.run_id = run.info.run_id
        state_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(self.run_id)
        return self.run_id

    def of_run(self, run_id: str) -> Tracker:
        """This store's tracker of another run (`tfpipe tune` tags its finished trials)."""
        other = copy.copy(self)
        other.run_id, other.resumed = run_id, False
        return other

    def finish(self, state_dir: Path, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)
        if status == "FINISHED":
            (state_dir / RUN_ID_FILE).unlink(missing_ok=True)

    def log_params(self, params: Mapping[str, Any]) -> None:
        if self.resumed:
            return  # logged when the run started; MLflow params are immutable
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        import time

        now = int(time.time() * 1000)
        items = [
            Metric(_metric_name(k), float(v), now, step or 0)
            for k, v in metrics.items()
            if _is_number(v)
        ]
        for i in range(0, len(items), 200):
            self.client.log_batch(self.run_id, metrics=items[i : i + 200])

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_artifacts(self, path: Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, str(path), artifact_path)

    def metric_history(self, keys: Iterable[str]) -> dict[str, list[float]]:
        """Per-epoch values across every resume of the run, for the training-curve PNG."""
        out = {}
        for key in keys:
            points = self.client.get_metric_history(self.run_id, _metric_name(key))
            by_step = {p.step: p.value for p in points}
            if by_step:
                out[key] = [by_step[s] for s in sorted(by_step)]
        return out


def _metric_name(key: str) -> str:
    return key.replace("@", "_at_")


def _is_number(value: Any) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


class MlflowEpochLogger(keras.callbacks.Callback):
    """Logs every epoch's Keras logs (train, validation, task metrics, learning rate)."""

    def __init__(self, tracker: Tracker):
        super().__init__()
        self.tracker = tracker
        self.keys: set[str] = set()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(logs or {})
        self.keys.update(logs)
        self.tracker.log_metrics(logs, step=epoch + 1)
