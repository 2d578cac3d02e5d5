"""Image-classification benchmark: CIFAR-10 or MNIST-10k from the shared archives.

    python bench/images.py --data-dir ../shared/data --dataset cifar10 --model resnet20 \
        --minutes 15 --out resnet20.json [--workdir runs] [--epochs N] [--set key=value ...]

Reads the archive through the pipeline (`data.path`, extracted once into the cache folder
`data.extract_dir`; MNIST-10k: the first 8,000 images train, the last 2,000 test, labels
from the file names: `data.label_pattern`, `data.carve=ordered`), calibrates the training
speed for a few seconds, and trains with `tfpipe run images` machinery
(`pipelines.core.runner`) within `--minutes`: when the recipe's epochs fit, with Keras'
`ExponentialDecay` over them; when they do not, until the budget ends, the exponential decay
paced by the share of the budget spent (`train.schedule.name=exponential_budget`). Then it
measures the tf.data input pipeline alone, the exported model's throughput and single-image latency.
Figures are printed, written to `--out` as JSON and logged to the run's MLflow record, so
`tfpipe compare images --workdir W` shows them.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import data_dir_arg, latency_ms_p50, machine  # noqa: E402

ARCHIVES = {"cifar10": "cifar10-jpg.tar.gz", "mnist10k": "mnist10k-png.tar.gz"}
EPOCH_OVERHEAD_S = 4.0

# Per model family: what is expected to reach the targets on a 2-core AVX-512 CPU in 15
# minutes. bfloat16 doubles convolution throughput there, and batch norm on the fused
# kernel (`tfmodels.layers.FusedBatchNormalization`) adds 40% for ResNet-20. XLA does not
# help on this CPU: it was 40% slower for ResNet-20, so it stays off
# (`--set train.jit_compile=true` to try).
# The learning rate warms up, then decays exponentially from `lr` to `lr * final_lr` by
# the end of training (`max_epochs`, or the time budget). Keras' SGD weight decay is
# decoupled (not scaled by 1/(1 - momentum) as L2 is), so 5e-3 here matches the classic
# 5e-4 L2 of CIFAR recipes.
RECIPES: dict[str, dict] = {
    # LeNet underfits CIFAR under full augmentation: a gentler crop (2 pixels).
    "lenet": dict(optimizer="adam", lr=2e-3, batch=128, weight_decay=0.0, final_lr=0.02,
                  warmup_epochs=0.0, max_epochs=60, settings=["data.crop_padding=2"]),
    "alexnet": dict(optimizer="adam", lr=5e-4, batch=128, weight_decay=0.0, final_lr=0.02,
                    warmup_epochs=0.3, max_epochs=40),
    "vgg": dict(optimizer="sgd", lr=0.05, batch=128, weight_decay=5e-3, final_lr=0.01,
                warmup_epochs=0.3, max_epochs=40, width=0.5, dropout=0.1),
    "inception": dict(optimizer="sgd", lr=0.05, batch=128, weight_decay=5e-3, final_lr=0.01,
                      warmup_epochs=0.3, max_epochs=40, width=0.5),
    # Label smoothing (0.1) keeps the logits from growing over a short run.
    "resnet": dict(optimizer="sgd", lr=0.15, batch=128, weight_decay=5e-3, final_lr=0.01,
                   warmup_epochs=0.5, max_epochs=40, settings=["model.label_smoothing=0.1"]),
}
DATASET_SETTINGS = {
    # Mirror images keep their CIFAR class: the export averages each image with its mirror.
    "cifar10": ["data.val_fraction=0.02", "data.crop_padding=4", "data.flip=true",
                "serving.tta_flip=true"],
    # The first 8,000 images by name train, the last 2,000 test; the digit is in the name.
    "mnist10k": ["data.label_pattern=num(\\d)", "data.carve=ordered", "data.test_fraction=0.2",
                 "data.val_fraction=0.05", "data.crop_padding=2", "data.flip=false"],
}


def family(model: str) -> str:
    match = re.match(r"[a-z]+", model.lower())
    if not match or match.group(0) not in RECIPES:
        raise SystemExit(f"unknown model '{model}' (families: {', '.join(RECIPES)})")
    return match.group(0)


def find_archive(data_dir: Path, dataset: str) -> Path:
    for candidate in (data_dir / "images" / ARCHIVES[dataset], data_dir / ARCHIVES[dataset]):
        if candidate.is_file():
            return candidate
    raise SystemExit(f"{ARCHIVES[dataset]} not found under {data_dir} (or its images/)")


def base_overrides(model: str, dataset: str, recipe: dict) -> list[str]:
    out = [f"model.name={model}", f"train.batch_size={recipe['batch']}",
           f"train.learning_rate={recipe['lr']}", f"train.optimizer={recipe['optimizer']}",
           f"train.weight_decay={recipe['weight_decay']}", "train.schedule.name=exponential",
           "train.mixed_precision=auto", "train.verbose=2", "data.cache=memory"]
    if "width" in recipe:
        out.append(f"model.width={recipe['width']}")
    if "dropout" in recipe:
        out.append(f"model.dropout={recipe['dropout']}")
    return out + DATASET_SETTINGS[dataset] + recipe.get("settings", [])


def input_pipeline_speed(train, max_batches: int = 400) -> float:
    """Images per second of the training tf.data pipeline alone (after filling its cache)."""
    for _ in train:  # first pass decodes and fills the cache
        pass
    count, started = 0, time.perf_counter()
    for index, (images, _) in enumerate(train):
        count += int(images.shape[0])
        if index + 1 >= max_batches:
            break
    return count / (time.perf_counter() - started)


def calibrate(task, config, train, seconds: float = 15.0) -> tuple[float, float]:
    """(steady training images/s, seconds to compile and warm up) of this model here,
    on the training dataset `train` whose cache is already filled.

    One `fit` over one iterator, timed per batch by a callback: a `fit` call per window
    would refill the whole-set shuffle buffer every time and time that instead.
    """
    import keras

    from pipelines.core.runner import setup_precision
    from pipelines.core.schedules import build_optimizer

    class BatchTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times: list[float] = []
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter())
            if self.times[-1] - self.started > seconds and len(self.times) > 8:
                self.model.stop_training = True

    tc = config.train
    setup_precision(tc.mixed_precision)
    model = task.build_model()
    model.compile(optimizer=build_optimizer(tc.optimizer, tc.learning_rate,
                                            weight_decay=tc.weight_decay),
                  jit_compile=tc.jit_compile, **task.compile_args(model))
    timer = BatchTimes()
    model.fit(train.repeat(), steps_per_epoch=100_000, epochs=1, verbose=0, callbacks=[timer])
    warm = timer.times[2] - timer.started  # compile, first batches, shuffle buffer
    # The median step: a burst of load from elsewhere on the machine moves a mean (and
    # then the number of epochs planned) far more than it moves a median.
    steps = sorted(b - a for a, b in zip(timer.times[3:], timer.times[4:], strict=False))
    speed = tc.batch_size / steps[len(steps) // 2]
    del model
    keras.backend.clear_session()
    return speed, warm


def serving_speed(export_dir: Path, task, batch: int = 256, requests: int = 100):
    """(images/s in batches of `batch`, p50 single-image latency in ms) of the export."""
    import tensorflow as tf

    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    images = [d for d, _ in task.source.encoded("test", parallel=False).take(2048)
              .as_numpy_iterator()]
    batches = [tf.constant(images[i:i + batch]) for i in range(0, len(images), batch)]
    serve(image_bytes=batches[0])  # warm up
    started = time.perf_counter()
    for chunk in batches:
        serve(image_bytes=chunk)
    throughput = len(images) / (time.perf_counter() - started)
    single = [tf.constant(images[i % len(images):i % len(images) + 1]) for i in range(requests)]
    latency = latency_ms_p50(lambda request: serve(image_bytes=request)["label"].numpy(),
                             single, warmup=1)
    return throughput, latency


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir",
                        help="folder holding images/*.tar.gz (default: $TFPIPE_DATA_DIR)")
    parser.add_argument("--dataset", choices=sorted(ARCHIVES), required=True)
    parser.add_argument("--model", required=True, help="lenet, alexnet, vgg11, resnet20, ...")
    parser.add_argument("--minutes", type=float, required=True, help="training time budget")
    parser.add_argument("--out", required=True, help="JSON file for the figures")
    parser.add_argument("--workdir", default="runs", help="MLflow store and exports")
    parser.add_argument("--epochs", type=int, help="skip the calibration: train this many")
    parser.add_argument("--precision", default="measure",
                        choices=("measure", "auto", "none", "mixed_bfloat16", "mixed_float16"),
                        help="measure: calibrate bfloat16 and float32, train with the faster")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override (after the recipe)")
    args = parser.parse_args(argv)
    args.data_dir = str(data_dir_arg(args.data_dir))

    import math

    from mlflow.tracking import MlflowClient

    from pipelines.core.config import load_config
    from pipelines.core.runner import run_pipeline
    from pipelines.images.config import ImagesConfig
    from pipelines.images.task import ImagesTask

    recipe = dict(RECIPES[family(args.model)])
    archive = find_archive(Path(args.data_dir).expanduser(), args.dataset)
    tmp = Path(tempfile.mkdtemp(prefix=f"tfpipe-bench-{args.dataset}-"))
    try:
        overrides = base_overrides(args.model, args.dataset, recipe) + args.set
        config = load_config(ImagesConfig, None, overrides)
        config.data.path = str(archive)  # extracted once by the pipeline
        config.run_name = f"bench-{args.dataset}-{args.model}-{time.strftime('%Y%m%d-%H%M%S')}"

        task = ImagesTask(config, tmp)
        task.prepare(tmp / "prepare")
        n_train = task.source.counts["train"]
        batch = config.train.batch_size
        train, _ = task.datasets(batch)
        input_speed = input_pipeline_speed(train)
        print(f"input pipeline: {input_speed:.0f} images/s", flush=True)
        calibrated, warm = (None, 0.0)
        if args.precision == "measure" and not args.epochs:
            # bfloat16 doubles the speed of wide convolutions but costs casts that tiny
            # models (LeNet) do not earn back: measure both, keep the faster.
            speeds = {}
            for policy in ("mixed_bfloat16", "none"):
                config.train.mixed_precision = policy
                speeds[policy] = calibrate(task, config, train)
                print(f"calibration {policy}: {speeds[policy][0]:.0f} images/s", flush=True)
            best = max(speeds, key=lambda p: speeds[p][0])
            config.train.mixed_precision = best
            calibrated, warm = speeds[best]
        elif args.precision != "measure":
            config.train.mixed_precision = args.precision
        paced_by_time = False
        epochs = args.epochs or recipe["max_epochs"]
        if not args.epochs:
            if calibrated is None:
                calibrated, warm = calibrate(task, config, train)
            # Per epoch: the images at the calibrated speed, plus refilling the shuffle
            # buffer, validation through the serving graph, the checkpoint and the MLflow
            # logging (about 4 seconds here).
            epoch_seconds = n_train / calibrated + EPOCH_OVERHEAD_S
            fit = int((args.minutes * 60 - warm) // epoch_seconds)
            # More epochs fit than the recipe wants: decay over those, by steps. Fewer:
            # train until the budget ends, decaying by the share of it spent, so that a
            # slow spell on a shared machine cannot stop training at a high rate.
            paced_by_time = fit < epochs
            print(f"calibration: {calibrated:.0f} images/s ({config.train.mixed_precision}), "
                  f"{warm:.0f}s to compile -> about {fit} epochs in {args.minutes:g} min; "
                  + ("decay paced by the time budget" if paced_by_time
                     else f"{epochs} epochs, decay paced by steps"), flush=True)
        steps_per_epoch = max(1, n_train // batch)
        schedule = config.train.schedule
        schedule.warmup_steps = int(recipe["warmup_epochs"] * steps_per_epoch)
        if paced_by_time:
            # lr = lr0 * final_lr ** (share of the budget spent): `final_lr` at the end.
            schedule.name = "exponential_budget"
            schedule.decay_rate = recipe["final_lr"]
        else:
            # Warm up, then decay by `final_lr` in total over the remaining steps (the
            # runner's warm-up shifts the schedule), i.e. the same factor every epoch.
            decay_span = max(1, epochs * steps_per_epoch - schedule.warmup_steps)
            schedule.decay_steps = steps_per_epoch
            schedule.decay_rate = recipe["final_lr"] ** (steps_per_epoch / decay_span)
        config.train.epochs = epochs
        config.train.max_minutes = args.minutes

        result = run_pipeline("images", config, data_dir=tmp, workdir=args.workdir)
        serve_speed, latency = serving_speed(result.export_dir, task)
        model = task.build_model()
        # End to end (compile, validation, checkpoints included); an epoch cut short by the
        # time limit is not counted, so this errs low.
        # (TimeLimit stops a little before the budget, to leave room for the epoch's tail.)
        time_limited = result.epochs_run < config.train.epochs
        full_epochs = result.epochs_run - (1 if time_limited else 0)
        end_to_end = full_epochs * steps_per_epoch * batch / result.train_seconds
        figures = {
            "dataset": args.dataset,
            "model": args.model,
            "mixed_precision": config.train.mixed_precision,
            "test_accuracy": result.test_metrics["accuracy"],
            "train_seconds": result.train_seconds,
            "epochs_run": result.epochs_run,
            "params": model.count_params(),
            # What training consumes at steady state (the calibration), else end to end.
            "train_images_per_second": calibrated or end_to_end,
            "train_images_per_second_end_to_end": end_to_end,
            "time_limited": time_limited,
            "schedule": config.train.schedule.name,
            "input_images_per_second": input_speed,
            "serving_images_per_second": serve_speed,
            "latency_ms_p50": latency,
            "train_images": n_train,
            "test_images": task.source.counts["test"],
            "minutes": args.minutes,
            "run_id": result.run_id,
            "export_dir": str(result.export_dir),
            "machine": machine(),
        }
        client = MlflowClient(result.tracking_uri)
        for key in ("params", "epochs_run", "train_images_per_second",
                    "input_images_per_second", "serving_images_per_second", "latency_ms_p50"):
            client.log_metric(result.run_id, key, float(figures[key]))
        client.set_tag(result.run_id, "bench", f"{args.dataset}/{args.model}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    width = max(len(k) for k in figures)
    for key, value in figures.items():
        shown = f"{value:.4f}" if isinstance(value, float) and not math.isnan(value) else value
        print(f"{key.ljust(width)}  {shown}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
