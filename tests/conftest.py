"""Shared fixtures: a tiny segmentation run trained once per session."""

from __future__ import annotations

import os

import pytest

# Two pytest workers share the two cores: one TensorFlow intra-op thread each (in this
# process and in the processes the tests start, which inherit the environment) instead of
# pools that oversubscribe the cores and spin against each other. The inter-op pool stays:
# ops that wait on each other (collectives across replicas) need more than one thread.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

from helpers import TINY_SEGMENTATION, set_args, tfpipe  # noqa: E402


@pytest.fixture(scope="session")
def segmentation_run(tmp_path_factory):
    """One real `tfpipe run segmentation` (jieba lexicon on) shared by the export tests."""
    workdir = tmp_path_factory.mktemp("seg-run")
    proc = tfpipe("run", "segmentation", "--workdir", str(workdir),
                  *set_args(TINY_SEGMENTATION))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return workdir
