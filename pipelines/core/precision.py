"""Keras dtype policies from the `mixed_precision` config values, for training and for
serving (`export.mixed_precision` may serve the same weights in another precision)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from pipelines.core import config as cfgmod


def keras_policy(policy: str) -> str:
    """The Keras dtype policy a `mixed_precision` config value names; `auto`: float16 on a
    GPU, bfloat16 on CPUs that have it."""
    import tensorflow as tf

    if policy == "auto":
        if tf.config.list_physical_devices("GPU"):
            return "mixed_float16"
        flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
        return "mixed_bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"
    return "float32" if policy == "none" else policy


def setup_precision(policy: str) -> None:
    """Set Keras' global dtype policy from a `mixed_precision` config value."""
    import keras

    keras.mixed_precision.set_global_policy(keras_policy(policy))


def serving_precision(config: cfgmod.PipelineConfig) -> str:
    """The Keras policy an export computes in: `export.mixed_precision`, else the training's."""
    return keras_policy(config.export.mixed_precision or config.train.mixed_precision)


@contextlib.contextmanager
def in_serving_precision(task, model, config: cfgmod.PipelineConfig):
    """`model`, or, when `export.mixed_precision` resolves to another policy than the
    training's, the same weights in a model built under it (variables stay float32 under a
    mixed policy, so they carry over as they are), with that policy set while it is in use."""
    policy, trained = serving_precision(config), keras_policy(config.train.mixed_precision)
    if policy == trained:
        yield model
        return
    with global_policy(policy):
        served = task.build_model()
        served.set_weights(model.get_weights())
        yield served


@contextlib.contextmanager
def global_policy(policy: str | None = None):
    """Keras' global dtype policy set to `policy` (a Keras policy name; unchanged when None)
    while in use, and the caller's again after: a run, or a model built in another precision,
    leaves the process in the precision it found. Usable as a decorator."""
    import keras

    before = keras.mixed_precision.global_policy()
    if policy is not None:
        keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)
