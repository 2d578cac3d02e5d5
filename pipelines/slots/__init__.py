"""Slot filling with intent detection (ATIS/SNIPS layout)."""
