"""The gated release chain against a real `mlflow server` on 127.0.0.1: the trained tiny
segmentation run (a copy of its workdir, whose store the server serves) exported again
through the gate, which blocks and passes, blessing, `tfpipe promote` by alias and its
refusal, models.config labels, the registered MLflow Model loaded in a fresh process and
answering over HTTP under `mlflow models serve`, and `tfpipe predict --export models:/`.

The tests run in order on one registry: each step's state is the next one's start."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from helpers import copy_workdir, set_args, subprocess_env
from servers import mlflow_server

from pipelines.cli import REFUSED, build_parser
from pipelines.core.config import ConfigError
from pipelines.core.launcher import free_ports
from pipelines.core.reexport import export_from_run

pytestmark = pytest.mark.slow

SENTENCE = "他们在北京参观博物馆。"
MODEL = "segmentation"


@pytest.fixture(scope="module")
def release(segmentation_run, tmp_path_factory):
    """(workdir, server URL, run id, the run's test_f1): MLFLOW_TRACKING_URI names the
    server for this module's in-process calls."""
    from mlflow.tracking import MlflowClient

    workdir = copy_workdir(segmentation_run, tmp_path_factory.mktemp("release") / "w")
    store = f"sqlite:///{workdir / 'mlflow.db'}"
    with (
        mlflow_server(store, workdir / "server-artifacts") as url,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("MLFLOW_TRACKING_URI", url)
        client = MlflowClient(url)
        (run,) = client.search_runs([client.get_experiment_by_name(MODEL).experiment_id])
        yield workdir, url, run.info.run_id, run.data.metrics["test_f1"]


def _client(url):
    from mlflow.tracking import MlflowClient

    return MlflowClient(url)


def _versions(url) -> list:
    return _client(url).search_model_versions(f"name='{MODEL}'")


def _exported(workdir) -> list[str]:
    return sorted(p.name for p in (workdir / "exports" / MODEL).iterdir() if p.name.isdigit())


def _gated(*overrides: str) -> list[str]:
    return ["export.register=true", *overrides]


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    """`tfpipe ARGV` in this process: its exit status, stdout and stderr."""
    args = build_parser().parse_args(list(argv))
    status = args.func(args)
    out = capsys.readouterr()
    return status, out.out.strip(), out.err.strip()


def test_gate_blocks_and_says_why_by_metric(release, capsys):
    workdir, url, run_id, f1 = release
    status, _, err = _cli(
        capsys,
        "export",
        MODEL,
        "--run",
        run_id,
        "--workdir",
        str(workdir),
        *set_args(
            _gated(f"export.gate.metrics.test_f1={f1 + 0.01}", "export.gate.metrics.test_recall=0")
        ),
    )
    assert status == REFUSED, err  # what `tfpipe export` exits with: a cron chain stops
    assert "gate failed: nothing exported or registered" in err
    assert f"test_f1: {f1:.6g} < {f1 + 0.01:.6g} (absolute)" in err
    assert "test_recall" not in err  # only the failing metrics are named
    assert _exported(workdir) == ["1"]  # no version for TF Serving to pick up
    assert _versions(url) == []
    tags = _client(url).get_run(run_id).data.tags
    assert tags["gate.passed"] == "false"
    assert tags["gate.test_f1"] == f"{f1:.6g} < {f1 + 0.01:.6g} (absolute)"
    assert tags["gate.test_recall"].endswith(">= 0 (absolute)")

    with pytest.raises(ConfigError, match=r"test_f2, which run \w+ did not log \(it has: test_f1"):
        export_from_run(MODEL, run_id, _gated("export.gate.metrics.test_f2=0.5"), workdir)


def test_gate_passes_blesses_the_candidate_and_labels_it(release):
    workdir, url, run_id, f1 = release
    result = export_from_run(
        MODEL,
        run_id,
        _gated(
            f"export.gate.metrics.test_f1={f1 - 0.01}",
            "export.gate.max_regression.test_f1=0",
            "export.batching.max_batch_size=16",
        ),
        workdir,
    )
    assert result.gate.passed and result.version == "1"
    assert result.export_dir == workdir / "exports" / MODEL / "2"
    client = _client(url)
    version = client.get_model_version_by_alias(MODEL, "candidate")
    assert version.version == "1" and version.source == f"runs:/{run_id}/savedmodel-v2"
    assert version.tags["blessed"] == "true" and version.tags["gate.passed"] == "true"
    assert version.tags["gate.baseline"] == "no baseline: no version holds 'production'"
    assert version.tags["gate.test_f1"].startswith(f"{f1:.6g} >= ")
    assert client.get_run(run_id).data.tags["gate.passed"] == "true"
    # The logged model is an MLflow Model and the SavedModel at once.
    logged = {a.path.split("/")[-1] for a in client.list_artifacts(run_id, "savedmodel-v2")}
    assert {"MLmodel", "pyfunc_model.py", "input_example.json", "saved_model.pb"} <= logged
    config = (workdir / "exports" / "models.config").read_text()
    assert "key: 'candidate'\n      value: 2" in config
    assert (
        "max_batch_size { value: 16 }"
        in (workdir / "exports" / "batching_parameters.txt").read_text()
    )


def test_promote_by_alias_refuses_unblessed_versions(release, capsys):
    workdir, url, run_id, _ = release
    status, out, _ = _cli(capsys, "promote", MODEL, "candidate", "--workdir", str(workdir))
    assert status == 0 and out == (
        "model 'segmentation': alias 'production' moved to version 1 "
        "(models:/segmentation@production)"
    )
    ungated = export_from_run(MODEL, run_id, _gated(), workdir)  # no gate: not blessed
    assert ungated.gate is None and ungated.version == "2"
    assert _client(url).get_model_version(MODEL, "2").tags["blessed"] == "false"
    status, _, err = _cli(capsys, "promote", MODEL, "2", "--workdir", str(workdir))
    assert status == REFUSED
    assert "version 2 is not blessed (no gate passed it)" in err and "--force" in err
    assert _client(url).get_model_version_by_alias(MODEL, "production").version == "1"
    status, out, err = _cli(
        capsys, "promote", MODEL, "2", "--alias", "staging", "--force", "--workdir", str(workdir)
    )
    assert status == 0 and "alias 'staging' moved to version 2" in out
    assert "unblessed" in err

    # Registry versions 1 and 2 are exports 2 and 3: both stay loaded, under their labels.
    config = (workdir / "exports" / "models.config").read_text()
    assert "specific {\n        versions: 2\n        versions: 3\n      }" in config
    for label, export in (("candidate", 2), ("production", 2), ("staging", 3)):
        assert f"key: '{label}'\n      value: {export}" in config


def test_relative_gate_against_production(release):
    workdir, url, run_id, f1 = release
    # The same run is production: it cannot beat itself by 0.01...
    blocked = export_from_run(
        MODEL, run_id, _gated("export.gate.max_regression.test_f1=-0.01"), workdir
    )
    assert blocked.export_dir is None and not blocked.gate.passed
    assert blocked.gate.comparisons["test_f1"] == (
        f"{f1:.6g} < {f1 + 0.01:.6g} (production v1: {f1:.6g} + 0.01)"
    )
    assert _exported(workdir) == ["1", "2", "3"] and len(_versions(url)) == 2
    # ...but it does not regress either.
    passed = export_from_run(MODEL, run_id, _gated("export.gate.max_regression.test_f1=0"), workdir)
    assert passed.gate.passed and passed.version == "3"
    assert passed.gate.baseline == f"production: version 1 (run {run_id})"
    assert _client(url).get_model_version_by_alias(MODEL, "candidate").version == "3"


PYFUNC = r"""
import json, sys
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model("models:/segmentation@production")
out = model.predict(pd.DataFrame({"text": [sys.argv[1]]}))
print(json.dumps({
    "segmented": out["segmented"].tolist(),
    "inputs": model.metadata.get_input_schema().input_names(),
    "project_imported": any(m.split(".")[0] in ("pipelines", "tfmodels") for m in sys.modules),
}))
"""


def test_pyfunc_loads_production_in_a_fresh_process(release, tmp_path):
    _, url, _, _ = release
    proc = subprocess.run(
        [sys.executable, "-c", PYFUNC, SENTENCE],
        capture_output=True,
        text=True,
        env=subprocess_env(MLFLOW_TRACKING_URI=url),
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["project_imported"] is False and result["inputs"] == ["text"]
    (segmented,) = result["segmented"]
    assert segmented.replace(" ", "") == SENTENCE and "北京" in segmented.split(" ")


def test_mlflow_models_serve_answers_a_raw_text_request(release, tmp_path):
    _, url, _, _ = release
    port = free_ports(1)[0]
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                "models:/segmentation@production",
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=subprocess_env(MLFLOW_TRACKING_URI=url),
            cwd=tmp_path,
            start_new_session=True,  # its own group: the scoring workers go with it
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{base}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        body = {
            "dataframe_records": [{"text": SENTENCE}],
            "params": {"signature": "serving_default"},
        }
        request = urllib.request.Request(
            f"{base}/invocations",
            data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            (answer,) = json.loads(response.read())["predictions"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    assert answer["segmented"].replace(" ", "") == SENTENCE
    assert [w for w in answer["words"] if w] == answer["segmented"].split(" ")


def test_predict_with_models_uri_plain_and_on_beam(release, tmp_path, capsys):
    workdir, _, _, _ = release
    source = tmp_path / "in.txt"
    source.write_text(f"{SENTENCE}\n今天我们学习技术。\n", encoding="utf-8")
    for runner in ("local", "beam"):
        target = tmp_path / f"{runner}.txt"
        argv = ["predict", MODEL, "--input", str(source), "--output", str(target)]
        argv += ["--export", "models:/segmentation@production", "--workdir", str(workdir)]
        argv += ["--runner", runner] + (["--single-file"] if runner == "beam" else [])
        status, out, _ = _cli(capsys, *argv)
        assert status == 0 and "models:/segmentation@production" in out
        lines = target.read_text(encoding="utf-8").splitlines()
        assert [line.replace(" ", "") for line in lines] == [SENTENCE, "今天我们学习技术。"]
