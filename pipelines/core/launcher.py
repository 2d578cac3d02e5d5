"""`tfpipe run PIPELINE --local-workers N`: a multi-worker job on this machine.

Starts N `python -m pipelines run ...` processes on 127.0.0.1, each with its TF_CONFIG
(what a cluster launcher such as a Kubernetes TFJob sets) and `train.strategy=multiworker`,
its share of the CPU threads, and its output in `WORKDIR/logs/worker-I.log` (the chief's,
worker 0, is also streamed here). If one worker fails the others are stopped; the chief's
exit code is the launcher's.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from pipelines.core.config import ConfigError


def free_ports(count: int) -> list[int]:
    """`count` TCP ports on 127.0.0.1 that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(cluster: list[str], index: int) -> str:
    """The TF_CONFIG of worker `index` of `cluster` (host:port of every worker)."""
    return json.dumps({"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}})


def worker_env(cluster: list[str], index: int) -> dict[str, str]:
    """Environment of one local worker: its TF_CONFIG and its share of the CPU threads."""
    threads = str(max(1, (os.cpu_count() or 1) // len(cluster)))
    return {
        **os.environ,
        "TF_CONFIG": tf_config(cluster, index),
        "PYTHONUNBUFFERED": "1",
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": threads,
        "OMP_NUM_THREADS": threads,
    }


def launch_local(run_args: list[str], workers: int, workdir: Path) -> int:
    """Run `tfpipe run RUN_ARGS` as `workers` local processes; the chief's exit code."""
    if workers < 2:
        raise ConfigError(f"--local-workers {workers}: give 2 or more workers")
    cluster = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    logs = Path(workdir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pipelines",
        "run",
        *run_args,
        "--set",
        "train.strategy=multiworker",
    ]
    procs: list[subprocess.Popen] = []
    files = []
    try:
        for index in range(workers):
            log_file = logs / f"worker-{index}.log"
            files.append(open(log_file, "w", encoding="utf-8"))  # noqa: SIM115
            out = None if index == 0 else files[-1]
            procs.append(
                subprocess.Popen(
                    command,
                    env=worker_env(cluster, index),
                    stdout=out,
                    stderr=subprocess.STDOUT if out else None,
                )
            )
            if index:
                print(f"[launcher] worker {index}: log in {log_file}", flush=True)
        return _supervise(procs)
    finally:
        _stop(procs)
        for f in files:
            f.close()


def _supervise(procs: list[subprocess.Popen]) -> int:
    """Wait for the chief; stop everything as soon as any worker fails."""
    chief = procs[0]
    while True:
        for index, proc in enumerate(procs):
            code = proc.poll()
            if code not in (None, 0):
                print(
                    f"[launcher] worker {index} failed (exit code {code}); stopping the others",
                    file=sys.stderr,
                    flush=True,
                )
                return code if index == 0 else (chief.poll() or code)
        if chief.poll() == 0:
            return 0
        time.sleep(0.2)


def _stop(procs: list[subprocess.Popen], grace: float = 10.0) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
