"""Pipelines are found where they declare themselves: `TASK` in a `pipelines` subpackage,
or an entry point of another installed package."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipelines.core import registry

BUILT_IN = {"autoencoder", "images", "segmentation", "slots", "speech", "translation"}


def test_every_subpackage_that_declares_a_task_is_a_pipeline():
    declared = registry.declared_pipelines()
    assert set(declared) == BUILT_IN  # core and image_input declare none
    assert declared["slots"] == "pipelines.slots.task:SlotsTask"
    assert registry.get_task_class("slots").name == "slots"


def test_an_installed_package_adds_a_pipeline_by_entry_point(tmp_path, monkeypatch):
    (tmp_path / "ocr_pipeline.py").write_text("class OCRTask:\n    name = 'ocr'\n")
    dist = tmp_path / "ocr_pipeline-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ocr-pipeline\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[tfpipelines.pipelines]\nocr = ocr_pipeline:OCRTask\n"
        "slots = ocr_pipeline:OCRTask\n"  # a taken name: the built-in stays
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.pipeline_tasks.cache_clear()
    try:
        tasks = registry.pipeline_tasks()
        assert tasks["ocr"] == "ocr_pipeline:OCRTask"
        assert tasks["slots"] == "pipelines.slots.task:SlotsTask"
        assert registry.get_task_class("ocr").name == "ocr"
    finally:
        registry.pipeline_tasks.cache_clear()


def test_an_unknown_pipeline_names_the_known_ones():
    with pytest.raises(KeyError, match=r"unknown pipeline 'ocr' \(known: autoencoder, images,"):
        registry.get_task_class("ocr")


def test_listing_the_pipelines_imports_no_tensorflow():
    code = (
        "import sys; from pipelines.core.registry import pipeline_tasks; "
        "names = sorted(pipeline_tasks()); "
        "print(' '.join(names), 'tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [*sorted(BUILT_IN), "False"]
