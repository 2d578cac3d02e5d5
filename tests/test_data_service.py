"""`data.service`: the training input's processing on tf.data service workers (an
in-process dispatcher and two workers), and clear refusals for inputs they cannot run."""

from __future__ import annotations

import threading
import time

import pytest
import tensorflow as tf
from helpers import DATA, TINY_SEGMENTATION

from pipelines.core.config import ConfigError, DataConfig
from pipelines.core.data_service import on_data_service
from pipelines.core.runner import load_task_config, run_pipeline


@pytest.fixture
def service():
    """A fresh dispatcher and two workers in this process; (address, workers)."""
    service_lib = tf.data.experimental.service
    # Jobs whose reader has gone are dropped within a second, so the workers stop fast.
    dispatcher = service_lib.DispatchServer(
        service_lib.DispatcherConfig(port=0, job_gc_check_interval_ms=500, job_gc_timeout_ms=500)
    )
    address = dispatcher.target.removeprefix("grpc://")
    workers = [
        service_lib.WorkerServer(
            service_lib.WorkerConfig(dispatcher_address=address, heartbeat_interval_ms=500)
        )
        for _ in range(2)
    ]
    yield dispatcher.target, workers
    for worker in workers:
        worker.stop()
    dispatcher.stop()


@pytest.mark.slow
def test_distributed_epoch_hands_each_element_out_once(service):
    target, _ = service
    dataset = on_data_service(
        tf.data.Dataset.range(40).map(lambda x: x * 3), DataConfig(service=target), "test"
    )
    assert sorted(dataset.as_numpy_iterator()) == list(range(0, 120, 3))
    both = on_data_service(
        tf.data.Dataset.range(5), DataConfig(service=target, service_mode="parallel_epochs"), "test"
    )
    assert sorted(both.as_numpy_iterator()) == sorted([*range(5), *range(5)])


def test_inputs_the_workers_cannot_run_are_refused_by_name():
    def numbers():
        yield from range(3)

    generated = tf.data.Dataset.from_generator(
        numbers, output_signature=tf.TensorSpec([], tf.int64)
    )
    config = DataConfig(service="grpc://localhost:1")  # never reached: refused before
    with pytest.raises(
        ConfigError,
        match=r"the speech training data .* runs Python "
        r"\((Eager)?PyFunc: a generator or py_function\)",
    ):
        on_data_service(generated, config, "speech")
    counted = tf.data.Dataset.range(8).apply(tf.data.experimental.assert_cardinality(8))
    with pytest.raises(ConfigError, match="AssertCardinalityDataset.*parallel_epochs"):
        on_data_service(counted, config, "autoencoder")
    with pytest.raises(ConfigError, match="service_mode must be one of"):
        on_data_service(
            counted, DataConfig(service="grpc://localhost:1", service_mode="epochs"), "autoencoder"
        )
    plain = tf.data.Dataset.range(3)
    assert on_data_service(plain, DataConfig(), "segmentation") is plain


@pytest.mark.slow
def test_segmentation_trains_on_two_service_workers(service, tmp_path, monkeypatch):
    """A real training run reads its training batches from the two workers (both get a
    share of the job, watched while it runs) and learns."""
    target, workers = service
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = load_task_config(
        "segmentation",
        None,
        [
            *TINY_SEGMENTATION,
            "train.epochs=1",
            "train.learning_rate=0.005",
            "data.lexicon=none",
            "export.enabled=false",
            f"data.service={target}",
        ],
    )
    tasks = [0, 0]  # the most tasks each worker had at once while the run went on
    running = threading.Event()
    running.set()

    def watch():
        while running.is_set():
            tasks[:] = [max(seen, w._num_tasks()) for seen, w in zip(tasks, workers, strict=True)]
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = run_pipeline("segmentation", config, DATA, tmp_path)
    finally:
        running.clear()
        watcher.join()
    assert min(tasks) >= 1, tasks
    assert result.test_metrics["f1"] > 0.5
