"""Slot filling with intent detection (ATIS/SNIPS layout)."""

# How `pipelines.core.registry` finds this pipeline.
TASK = "pipelines.slots.task:SlotsTask"
