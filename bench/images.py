"""Image-classification benchmark: a recipe (configs/images-*.yaml) on CIFAR-10 or MNIST-10k,
read from the shared archives by the pipeline itself (`data.path`, extracted once).

    python bench/images.py --config configs/images-cifar10-resnet14.yaml \\
        --data-dir ../shared/data --out r14.json [--minutes 15] [--workdir W] [--set k=v ...]
    python bench/images.py --config configs/images-cifar10-resnet14.yaml \\
        --data-dir ../shared/data --export W/exports/images/1 --out F.json  # time an export

Trains as `tfpipe run images --config ...` does (the budget recipes train until
`train.max_minutes` ends, the decay paced by the share of it spent), then measures the
tf.data input pipeline alone, the steady training speed (median step), the export's test
accuracy, batched throughput and single-image latency. `--set model.fused_batch_norm=false`
is the A/B of the fused batch-norm kernel.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import common


def input_pipeline_speed(train, max_batches: int = 400) -> float:
    """Images per second of the training tf.data pipeline alone (after filling its cache)."""
    for _ in train.take(max_batches):  # fills the shuffle buffer (and, with it, the cache)
        pass
    count, started = 0, time.perf_counter()
    for images, _ in train.take(max_batches):
        count += int(images.shape[0])
    return count / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__)
    p.add_argument("--serving-batch", type=int, default=256, help="images per serving call")
    args = p.parse_args(argv)
    if not args.config:
        p.error("--config is required (e.g. configs/images-cifar10-resnet14.yaml)")
    config, result, export_dir = common.train_or_export("images", args)

    import tensorflow as tf

    from pipelines.core.precision import keras_policy
    from pipelines.images.task import ImagesTask

    if result is None:
        task = ImagesTask(config, common.data_dir(args))
        task.prepare(Path(args.workdir or "."))
    else:
        task = result.task

    train_ds, _ = task.datasets(config.train.batch_size)
    input_speed = input_pipeline_speed(train_ds)
    signature = common.load_signature(export_dir)
    labels, images = [], []
    for data, label in task.source.encoded("test", parallel=False).as_numpy_iterator():
        images.append(data)
        labels.append(int(label))
    batch = args.serving_batch
    batches = [tf.constant(images[i : i + batch]) for i in range(0, len(images), batch)]
    predicted = [int(c) for b in batches for c in signature(image_bytes=b)["class_id"].numpy()]
    accuracy = sum(a == b for a, b in zip(labels, predicted, strict=True)) / len(labels)
    timing = common.time_signature(
        lambda b: signature(image_bytes=b)["label"].numpy(),
        batches[:8],
        items=sum(int(b.shape[0]) for b in batches[:8]),
        singles=[tf.constant([images[i % len(images)]]) for i in range(100)],
    )

    report = {
        "benchmark": "images",
        "config": args.config,
        "model": config.model.name,
        "data": config.data.path,
        "test_accuracy": round(accuracy, 4),
    }
    if result is not None:
        kept = json.loads((result.model_dir / "trained_model.json").read_text())
        report.update(
            {
                "test_accuracy_runner": round(result.test_metrics["accuracy"], 4),
                "params": kept["params"],
                **common.run_figures(result),
                # Training examples over wall time, validation and checkpoints included.
                "train_images_per_second_end_to_end": round(
                    result.epochs_run * task.source.counts["train"] / result.train_seconds, 1
                ),
                "time_limited": result.epochs_run < config.train.epochs,
            }
        )
    report.update(
        {
            "mixed_precision": keras_policy(config.train.mixed_precision),
            "fused_batch_norm": config.model.fused_batch_norm,
            "schedule": config.train.schedule.name,
            "minutes_budget": config.train.max_minutes,
            "input_images_per_second": round(input_speed),
            "serving_images_per_second": round(timing.items_per_second, 1),
            **timing.latency_figures(),
            "train_images": task.source.counts["train"],
            "test_images": len(labels),
            "serving": common.export_metadata(export_dir).get("serving"),
            "overrides": args.set,
        }
    )
    common.write_report(report, args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
