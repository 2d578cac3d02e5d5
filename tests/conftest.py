"""Shared fixtures: a tiny segmentation run trained once per session."""

from __future__ import annotations

import pytest
from helpers import TINY_SEGMENTATION, set_args, tfpipe


@pytest.fixture(scope="session")
def segmentation_run(tmp_path_factory):
    """One real `tfpipe run segmentation` (jieba lexicon on) shared by the export tests."""
    workdir = tmp_path_factory.mktemp("seg-run")
    proc = tfpipe("run", "segmentation", "--workdir", str(workdir),
                  *set_args(TINY_SEGMENTATION))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return workdir
