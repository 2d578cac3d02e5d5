"""Choosing the tf.distribute strategy from config, and scaling batch and learning rate."""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf

from pipelines.core.config import ConfigError

log = logging.getLogger(__name__)


def split_cpu(replicas: int) -> None:
    """Split the CPU into `replicas` logical devices (must run before TF initialises)."""
    if replicas <= 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(replicas)]
    )


def make_strategy(name: str, cpu_replicas: int = 0) -> tf.distribute.Strategy:
    """`auto`: multi-worker when TF_CONFIG names several workers, mirrored over several GPUs
    (or several logical CPUs), else one device."""
    if name == "auto" and len(_tf_config().get("cluster", {}).get("worker", [])) > 1:
        name = "multiworker"
    if name == "multiworker":
        # Before anything lists devices: collectives are configured at TF's start-up.
        return _multi_worker()
    split_cpu(cpu_replicas)
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    if name == "auto":
        if len(gpus) > 1 or (not gpus and len(cpus) > 1):
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        # One device, no strategy object: Keras then iterates datasets directly, not
        # through multi-device iterators (a background thread each, and a batch fetched
        # from a fresh one at every evaluation just to check the model is built).
        strategy = tf.distribute.get_strategy()
    elif name == "onedevice":
        device = gpus[0].name if gpus else cpus[0].name
        strategy: tf.distribute.Strategy = tf.distribute.OneDeviceStrategy(device)
    elif name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in cpus]
        strategy = tf.distribute.MirroredStrategy(devices)
    else:
        raise ConfigError(
            f"train.strategy: unknown strategy '{name}' "
            "(auto, default, onedevice, mirrored, multiworker)"
        )
    log.info(
        "strategy %s with %d replica(s)", type(strategy).__name__, strategy.num_replicas_in_sync
    )
    return strategy


def _tf_config() -> dict:
    try:
        return json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    except ValueError as exc:
        raise ConfigError(f"TF_CONFIG is not valid JSON: {exc}") from exc


def _multi_worker() -> tf.distribute.Strategy:
    if not _tf_config().get("cluster"):
        raise ConfigError(
            "train.strategy=multiworker needs TF_CONFIG naming the cluster "
            "(tfpipe run --local-workers N sets it on one machine)"
        )
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    log.info(
        "strategy MultiWorkerMirroredStrategy with %d replica(s)", strategy.num_replicas_in_sync
    )
    return strategy


def scaled(
    batch_size: int, learning_rate: float, replicas: int, scale_lr: bool
) -> tuple[int, float]:
    """Global batch = per-replica batch x replicas; learning rate scaled linearly with it."""
    return batch_size * replicas, learning_rate * (replicas if scale_lr else 1)
