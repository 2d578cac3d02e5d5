"""Carving a validation split out of training examples, the same way in every pipeline."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def hold_out(examples: Sequence[T], fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """(train, validation): a seeded random `fraction` (at least one example when there
    are two or more) held out; the rest keeps its order, so cached data stays comparable."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_val = max(1, int(len(examples) * fraction)) if len(examples) > 1 else 0
    return ([examples[i] for i in sorted(order[n_val:])], [examples[i] for i in order[:n_val]])
