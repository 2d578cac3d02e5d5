"""Training input on tf.data service workers (`data.service`): when reading, decoding and
augmenting the data is what holds training back, a dispatcher hands the input pipeline to
as many worker processes or machines as it takes, and the trainer only receives batches.

The dataset travels to the workers as a graph, so it cannot hold Python: a task whose
training data comes from a Python generator or `py_function` is refused with the reason.
"""

from __future__ import annotations

import tensorflow as tf
from tensorflow.core.framework import graph_pb2

from pipelines.core.config import ConfigError, DataConfig

MODES = ("distributed_epoch", "parallel_epochs")
# Ops that call back into the Python process that built the dataset.
PYTHON_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
# Ops that check a dataset's full length, which a worker's share does not have.
SPLIT_BREAKERS = frozenset({"AssertCardinalityDataset"})


def on_data_service(dataset: tf.data.Dataset, data: DataConfig, pipeline: str) -> tf.data.Dataset:
    """`dataset` read from the tf.data service at `data.service` (unchanged when empty).

    `distributed_epoch`: the workers split the data, each element once per pass;
    `parallel_epochs`: every worker produces the whole dataset (same seed, same order), for
    inputs that cannot be split."""
    if not data.service:
        return dataset
    if data.service_mode not in MODES:
        raise ConfigError(
            f"data.service_mode must be one of {', '.join(MODES)}, not '{data.service_mode}'"
        )
    ops = ops_of(dataset)
    python_ops = sorted(ops & PYTHON_OPS)
    if python_ops:
        raise ConfigError(
            f"data.service: the {pipeline} training data as configured runs Python "
            f"({', '.join(python_ops)}: a generator or py_function), which tf.data service "
            "workers cannot run; use an input that is all TensorFlow ops, or leave "
            "data.service empty"
        )
    if data.service_mode == "distributed_epoch" and SPLIT_BREAKERS & ops:
        raise ConfigError(
            f"data.service_mode=distributed_epoch: the {pipeline} training data asserts its "
            f"length ({', '.join(sorted(SPLIT_BREAKERS & ops))}), which no worker's share "
            "of a split dataset has; set data.service_mode=parallel_epochs"
        )
    return dataset.apply(
        tf.data.experimental.service.distribute(
            processing_mode=data.service_mode, service=data.service
        )
    )


def ops_of(dataset: tf.data.Dataset) -> set[str]:
    """The ops of `dataset`'s graph and of the functions it calls."""
    graph = graph_pb2.GraphDef.FromString(dataset._as_serialized_graph().numpy())
    ops = {node.op for node in graph.node}
    return ops | {node.op for function in graph.library.function for node in function.node_def}
