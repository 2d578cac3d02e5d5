"""Pipeline names to Task classes, imported lazily so `tfpipe --help` stays fast."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.core.task import Task

PIPELINES: dict[str, str] = {
    "segmentation": "pipelines.segmentation.task:SegmentationTask",
    "slots": "pipelines.slots.task:SlotsTask",
    "images": "pipelines.images.task:ImagesTask",
    "speech": "pipelines.speech.task:SpeechTask",
    "autoencoder": "pipelines.autoencoder.task:AutoencoderTask",
    "translation": "pipelines.translation.task:TranslationTask",
}


def get_task_class(name: str) -> type[Task]:
    if name not in PIPELINES:
        raise KeyError(f"unknown pipeline '{name}' (known: {', '.join(sorted(PIPELINES))})")
    module_name, _, attr = PIPELINES[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)
