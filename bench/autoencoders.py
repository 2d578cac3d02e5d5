"""Autoencoder benchmark on MNIST-10k or CIFAR-10 (configs/autoencoder-*.yaml), three parts
within one time budget, each an ordinary `tfpipe run autoencoder` of the recipe:

    python bench/autoencoders.py --data-dir ../shared/data --dataset mnist10k --minutes 15 \\
        --out F.json [--workdir W] [--one-class-model conv] [--parts one_class,vae,denoising]
    python bench/autoencoders.py --data-dir ../shared/data --dataset mnist10k \\
        --export W/exports/autoencoder/1 --out F.json  # time an export only

- one-class: for each class, train on that class's training images only
  (`data.normal_classes=[C]`), score every test image, AUROC of "not that class"; the mean
  and each class. Only the last class's run is exported (to time serving);
- vae: the test negative ELBO in nats per image (MNIST's pixels binarised at 0.5 by the
  recipe's Bernoulli decoder);
- denoising: PSNR of noisy test images (Gaussian, sigma 0.5 on pixels in [0, 1], as the
  recipe sets it) and of their reconstructions;

each with what it sets on top of the recipe (`PART_OVERRIDES` below),

and the training time and parameters of each, the serving throughput (`serving_default`,
batches of 256 encoded test images: score, flag and reconstruction PNG) and the machine.
The budget is shared 60 / 20 / 20 between the parts (of the parts run), each part taking
its share of what is left when it starts (so what one part leaves unused, such as one-class
runs that reach their epochs early, goes to the later parts); each run's training stops at
its share less the time the runs before it spent outside training (reading, evaluation,
export), and each one-class run's share is what its part has left over the classes still
to run, so the whole stays within the budget.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

import common

PARTS = ("one_class", "vae", "denoising")
SHARES = {"one_class": 0.6, "vae": 0.2, "denoising": 0.2}
# What each part sets on top of the recipe (then --set): the VAE trains on digits moved by
# up to a pixel (it overfits 7,600 digits otherwise: 94.5 -> 90.3 nats), with a 32-number
# code and a stride-1 layer after each stride-2 one (it underfits with 16 and none: 88.8 ->
# 84.4 nats in the same 3.5 minutes, BENCHMARKS.md); the denoising
# model keeps a wide code (16 numbers cannot hold a digit's detail: 18.7 -> 20.1 dB). Both
# decay their rate over their time (the epochs cap set out of the way).
PART_OVERRIDES = {
    "vae": [
        "model.name=vae",
        "data.shift=1",
        "model.code_size=32",
        "model.depth=1",
        "train.schedule.name=cosine_budget",
        "train.epochs=500",
    ],
    "denoising": [
        "model.name=denoising",
        "model.code_size=256",
        "train.schedule.name=cosine_budget",
        "train.epochs=500",
    ],
}
FIRST_RUN_OVERHEAD_MINUTES = 0.5  # data, evaluation, plots and export, until one is measured
SERVING_MINUTES = 0.5  # the serving timing after the parts
SERVING_BATCH = 256


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__)
    p.add_argument(
        "--dataset",
        choices=("mnist10k", "cifar10"),
        default="mnist10k",
        help="picks the recipe configs/autoencoder-DATASET.yaml (or give --config)",
    )
    p.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}"
    )
    p.add_argument(
        "--one-class-model",
        default="",
        help="model.name of the one-class runs (default: the recipe's)",
    )
    p.add_argument("--classes", default="", help="one-class: these classes only (comma list)")
    args = p.parse_args(argv)
    args.config = args.config or f"configs/autoencoder-{args.dataset}.yaml"
    parts = [part for part in args.parts.split(",") if part]
    if unknown := sorted(set(parts) - set(PARTS)):
        p.error(f"unknown part(s) {', '.join(unknown)} (known: {', '.join(PARTS)})")
    minutes = args.minutes or 15.0
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="bench-autoencoder-")
    started = time.perf_counter()

    from pipelines.core.quiet import quiet_start

    quiet_start(args.verbose)
    from pipelines.core.runner import load_task_config
    from pipelines.image_input.dataset import ImageSet

    base = load_task_config("autoencoder", args.config, args.set)
    # Checked once here; the runs below skip decoding every file again.
    images = ImageSet.open(base.data, common.data_dir(args), base.train.seed)
    print(f"[bench] {images.describe()}", flush=True)
    report = {
        "benchmark": "autoencoders",
        "dataset": args.dataset,
        "config": args.config,
        "minutes_budget": minutes,
        "parts": parts,
        "overrides": args.set,
    }
    runs = []  # every run's result
    args.overheads = []  # (exported, minutes outside training) of each run
    if not args.export:

        def budget(part: str) -> float:
            """The part's share of the minutes left (less the serving timing's), so time a
            part leaves unused goes to the parts after it."""
            left = minutes - (time.perf_counter() - started) / 60 - SERVING_MINUTES
            later = parts[parts.index(part) :]
            return max(0.2, left * SHARES[part] / sum(SHARES[p] for p in later))

        if "one_class" in parts:
            classes = (
                [c for c in args.classes.split(",") if c]
                if args.classes
                else images.source.class_names
            )
            figures_, results = one_class(args, classes, budget("one_class") / len(classes))
            report.update(figures_)
            runs += results
        if "vae" in parts:
            result = run(args, "vae", budget("vae"), PART_OVERRIDES["vae"])
            report.update(figures("vae", result))
            report["vae_overrides"] = PART_OVERRIDES["vae"]
            report["vae_negative_elbo"] = round(result.test_metrics["negative_elbo"], 3)
            runs.append(result)
        if "denoising" in parts:
            result = run(args, "denoising", budget("denoising"), PART_OVERRIDES["denoising"])
            report.update(figures("denoising", result))
            report["denoising_overrides"] = PART_OVERRIDES["denoising"]
            report["denoising_psnr_noisy"] = round(result.test_metrics["noisy_psnr"], 3)
            report["denoising_psnr"] = round(result.test_metrics["denoised_psnr"], 3)
            runs.append(result)
        report["train_seconds"] = round(sum(r.train_seconds for r in runs), 1)
    # The run whose export is timed (the bench's figures go to its MLflow run too).
    timed = next((r for r in runs if r.export_dir), None)
    report.update(serving_speed(args.export or timed.export_dir, images.encoded_bytes("test")))
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    common.write_report(report, args.out, timed)
    return 0


def run(args, name: str, minutes: float, overrides: list[str], export: bool = True):
    """One `tfpipe run autoencoder` of the recipe with `overrides` (then `--set`), its
    training stopped at `minutes` less the margin for the rest of the run."""
    from pipelines.core.runner import load_task_config

    # Minutes outside training, as runs of the same kind took (an export costs a minute on
    # CIFAR-10: the first run's overhead would starve the unexported ones after it).
    alike = [spent for exported, spent in args.overheads if exported == export]
    overhead = max(alike or [spent for _, spent in args.overheads] or [FIRST_RUN_OVERHEAD_MINUTES])
    train_minutes = max(0.2, minutes - overhead)
    config = load_task_config(
        "autoencoder",
        args.config,
        [
            *overrides,
            f"train.max_minutes={train_minutes:.3f}",
            "data.validate=false",
            f"run_name={args.dataset}-{name}",
            f"export.enabled={str(export).lower()}",
            *args.set,
        ],
    )
    print(
        f"[bench] {name}: {' '.join(overrides)} (training at most {train_minutes:.2f} min "
        f"of its {minutes:.2f}-min share)",
        flush=True,
    )
    import keras

    keras.backend.clear_session()  # each run from a fresh Keras state, not the last one's
    started = time.perf_counter()
    result = common.train("autoencoder", config, args)
    args.overheads.append((export, (time.perf_counter() - started - result.train_seconds) / 60))
    return result


def one_class(args, classes: list[str], minutes: float) -> tuple[dict, list]:
    """Each class normal in turn: per-class AUROC (and average precision), their means;
    the runs' results. Only the last class's run is exported, so the runs before it learn
    their overhead outside training from runs like them."""
    model = [f"model.name={args.one_class_model}"] if args.one_class_model else []
    aurocs, precisions, results = {}, {}, []
    deadline = time.perf_counter() + minutes * len(classes) * 60
    for k, name in enumerate(classes):
        share = (deadline - time.perf_counter()) / 60 / (len(classes) - k)
        result = run(
            args,
            f"one-class-{name}",
            share,
            [*model, f"data.normal_classes=[{name}]"],
            export=k == len(classes) - 1,
        )
        results.append(result)
        aurocs[name] = round(result.test_metrics["auroc"], 4)
        precisions[name] = round(result.test_metrics["average_precision"], 4)
        print(f"[bench] class {name}: AUROC {aurocs[name]:.4f}", flush=True)
    return {
        "one_class_model": args.one_class_model or "(recipe)",
        "one_class_auroc_mean": round(sum(aurocs.values()) / len(aurocs), 4),
        "one_class_auroc": aurocs,
        "one_class_average_precision_mean": round(sum(precisions.values()) / len(precisions), 4),
        **figures("one_class", results[-1]),  # the exported run's id and parameters
        "one_class_train_seconds": round(sum(r.train_seconds for r in results), 1),
        "one_class_epochs": {name: r.epochs_run for name, r in zip(aurocs, results, strict=True)},
    }, results


def figures(part: str, result) -> dict:
    """Training time, epochs and parameters of one run."""
    kept = json.loads((result.model_dir / "trained_model.json").read_text())
    return {
        f"{part}_train_seconds": round(result.train_seconds, 1),
        f"{part}_epochs": result.epochs_run,
        f"{part}_params": kept["params"],
        f"{part}_mlflow_run_id": result.run_id,
    }


def serving_speed(export_dir, test_images: list[bytes]) -> dict:
    """`serving_default` over the test images in batches, and one image per call."""
    import tensorflow as tf

    signature = common.load_signature(export_dir)
    batches = [
        tf.constant(test_images[i : i + SERVING_BATCH])
        for i in range(0, len(test_images), SERVING_BATCH)
    ][:8]
    timing = common.time_signature(
        lambda b: signature(image_bytes=b)["anomaly_score"].numpy(),
        batches,
        items=sum(int(b.shape[0]) for b in batches),
        singles=[tf.constant([test_images[i % len(test_images)]]) for i in range(100)],
    )
    return {
        "serving_images_per_second": round(timing.items_per_second, 1),
        **timing.latency_figures(),
        "serving_export": str(export_dir),
        "serving": common.export_metadata(export_dir).get("serving"),
    }


if __name__ == "__main__":
    sys.exit(main())
