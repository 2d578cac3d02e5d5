"""Random training transformations in `tf.data` that repeat with the seed yet draw anew
every epoch (speech perturbation, image shifts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import tensorflow as tf


def map_with_seeds(
    ds: tf.data.Dataset, fn: Callable[[Any, tf.Tensor], Any], seed: int
) -> tf.data.Dataset:
    """`fn(element, draw_seed)` on each element of `ds`, `draw_seed` a `[2]` int64
    stateless seed that differs per element and per pass over `ds`, the whole sequence
    fixed by `seed`."""
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return tf.data.Dataset.zip((ds, seeds)).map(
        lambda element, draw: fn(element, tf.stack([draw, tf.zeros_like(draw)])),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
