"""Real servers for tests, on 127.0.0.1: PostgreSQL in a temporary cluster and `mlflow
server` on any backend store."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from helpers import subprocess_env

from pipelines.core.launcher import free_ports

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
POSTGRES_USER = "postgres"  # initdb and postgres refuse to run as root


def _postgres_tool(name: str) -> str:
    path = POSTGRES_BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        # Not a skip: CI's machine image has PostgreSQL 15, so a skip would hide a failure.
        raise RuntimeError(
            f"PostgreSQL's {name} is not in {POSTGRES_BIN} or on PATH: "
            "install PostgreSQL 15 (apt-get install postgresql-15)"
        )
    return found


def _as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a PostgreSQL tool as the `postgres` user (directly when not root)."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", POSTGRES_USER, "--", *args]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc


@contextlib.contextmanager
def postgres_cluster(database: str = "mlflow") -> Iterator[str]:
    """A throwaway PostgreSQL cluster (trust auth, no fsync) with `database`; yields its
    URL, `postgresql://postgres@127.0.0.1:PORT/DATABASE`. Stopped and deleted after."""
    folder = Path(tempfile.mkdtemp(prefix="tfpipe-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam(POSTGRES_USER)
        os.chown(folder, user.pw_uid, user.pw_gid)
    data = folder / "data"
    port = free_ports(1)[0]
    started = False
    try:
        _as_postgres(
            [
                _postgres_tool("initdb"),
                "-D",
                str(data),
                "-U",
                POSTGRES_USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        options = (
            f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        _as_postgres(
            [
                _postgres_tool("pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(folder / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        started = True
        _as_postgres(
            [
                _postgres_tool("createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                POSTGRES_USER,
                database,
            ]
        )
        yield f"postgresql://{POSTGRES_USER}@127.0.0.1:{port}/{database}"
    finally:
        if started:
            _as_postgres([_postgres_tool("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(backend_store_uri: str, artifacts: Path) -> Iterator[str]:
    """`mlflow server` on a free port of 127.0.0.1 with that store, serving artifacts from
    `artifacts`; yields its URL once /health answers."""
    port = free_ports(1)[0]
    # A file, not a pipe: nobody reads the server's output while it runs.
    log = tempfile.TemporaryFile(mode="w+", prefix="mlflow-server-")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            backend_store_uri,
            "--artifacts-destination",
            str(artifacts),
            "--workers",
            "1",
        ],
        # No job runner: its worker processes (GenAI evaluation jobs) only cost CPU here.
        stdout=log,
        stderr=subprocess.STDOUT,
        env=subprocess_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                log.seek(0)
                raise RuntimeError(f"mlflow server did not start: {log.read()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
