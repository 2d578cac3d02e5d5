"""Shared fixtures: a tiny segmentation run trained once per session."""

from __future__ import annotations

import fcntl
import os
import shutil

import pytest

# Two pytest workers share the two cores: one TensorFlow intra-op thread each (in this
# process and in the processes the tests start, which inherit the environment) instead of
# pools that oversubscribe the cores and spin against each other. The inter-op pool stays:
# ops that wait on each other (collectives across replicas) need more than one thread.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

from helpers import TINY_SEGMENTATION, set_args, tfpipe  # noqa: E402


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Plan for `--dist loadfile --no-loadscope-reorder` (pyproject's addopts): files that
    start training processes or servers (a test marked slow) are handed out first, so that
    the quick files fill in at the end instead of one worker finishing a long file alone."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)  # stable: files stay whole


@pytest.fixture(scope="session")
def segmentation_run(tmp_path_factory):
    """One real `tfpipe run segmentation` (jieba lexicon on) shared by the export tests,
    trained once per test session: the first pytest worker to ask trains it under a file
    lock, the others wait for it and reuse it (tests only read it or copy it)."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the session's folder, above each worker's own
    workdir, trained = shared / "seg-run", shared / "seg-run.trained"
    with open(shared / "seg-run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not trained.exists():
            shutil.rmtree(workdir, ignore_errors=True)
            proc = tfpipe(
                "run", "segmentation", "--workdir", str(workdir), *set_args(TINY_SEGMENTATION)
            )
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            trained.touch()
    return workdir


@pytest.fixture(autouse=True)
def _float32_policy():
    """Each test starts in float32: `run_pipeline` gives back the caller's dtype policy, but
    a kept model loaded in its serving precision (`load_trained_model`) or a test that sets a
    policy itself would otherwise leave it to the next test of the same worker."""
    import keras

    keras.mixed_precision.set_global_policy("float32")
    yield
