"""Pipeline names to Task classes. Each pipeline declares itself; nothing here lists them.

Adding a pipeline: a subpackage `pipelines/<name>/` whose `__init__.py` says where its Task
is, `TASK = "pipelines.<name>.task:<Class>"`, is found by scanning this package. A pipeline
in another installed package declares an entry point in the `tfpipelines.pipelines` group,
named as the pipeline and pointing at its Task class, e.g. in its pyproject.toml:

    [project.entry-points."tfpipelines.pipelines"]
    ocr = "ocr_pipeline.task:OCRTask"

Only the packages' `__init__` modules (docstring and `TASK`) and the entry points' names are
read to list the pipelines, so `tfpipe --help` stays fast; a Task module (TensorFlow and
all) is imported when its pipeline is run.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import logging
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.core.task import Task

ENTRY_POINT_GROUP = "tfpipelines.pipelines"
log = logging.getLogger(__name__)


def declared_pipelines(package: str = "pipelines") -> dict[str, str]:
    """`name -> "module:Class"` of `package`'s subpackages that declare `TASK`."""
    root = importlib.import_module(package)
    found: dict[str, str] = {}
    for info in pkgutil.iter_modules(root.__path__):
        if info.ispkg:
            task = getattr(importlib.import_module(f"{package}.{info.name}"), "TASK", None)
            if task:
                found[info.name] = task
    return found


def installed_pipelines(group: str = ENTRY_POINT_GROUP) -> dict[str, str]:
    """`name -> "module:Class"` of the entry points other packages declare in `group`."""
    return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=group)}


@functools.cache
def pipeline_tasks() -> dict[str, str]:
    """Every pipeline by name: this package's own, then installed ones (a name already
    taken is left out, with a warning)."""
    tasks = declared_pipelines()
    for name, target in installed_pipelines().items():
        if name in tasks:
            if tasks[name] != target:
                log.warning(
                    "entry point %s=%s (group %s) left out: pipeline '%s' is %s",
                    name,
                    target,
                    ENTRY_POINT_GROUP,
                    name,
                    tasks[name],
                )
            continue
        tasks[name] = target
    return tasks


def get_task_class(name: str) -> type[Task]:
    tasks = pipeline_tasks()
    if name not in tasks:
        raise KeyError(f"unknown pipeline '{name}' (known: {', '.join(sorted(tasks))})")
    module_name, _, attr = tasks[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)
