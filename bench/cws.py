"""Chinese word segmentation benchmark on the SIGHAN corpora in ../shared/data/cws.

    python bench/cws.py --data-dir ../shared/data --minutes 15 --out cws.json [--workdir W]
        [--train cws/msr_train.txt] [--test cws/pku_test_gold.txt] [--set key=value ...]
    python bench/cws.py --data-dir ../shared/data --export W/exports/segmentation/1 --out F.json

Trains on --train (a tenth held out for validation) within --minutes of training time,
scores the test gold with the bakeoff word F1, and times the exported SavedModel: batched
over the whole test set (characters per second) and one sentence per call (p50 latency).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import data_dir_arg, latency_ms_p50, machine, write_report  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--out")
    parser.add_argument("--workdir")
    parser.add_argument("--train", default="cws/pku_train.txt")
    parser.add_argument("--test", default="cws/pku_test_gold.txt")
    parser.add_argument("--batch-size", type=int, default=1024,
                        help="sentences per serving call")
    parser.add_argument("--export", help="skip training: score and time this SavedModel")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    data_dir = data_dir_arg(args.data_dir)

    from pipelines.core.runner import load_task_config, run_pipeline
    from pipelines.segmentation.metrics import word_prf
    from pipelines.segmentation.reader import read_segmented

    overrides = [
        f"data.train={args.train}", f"data.test={args.test}", "data.val_fraction=0.1",
        "train.epochs=200", f"train.max_minutes={args.minutes}",
        "train.early_stopping_patience=4", "run_name=bench",
        # What worked best in the runs described in README.md (Benchmarks): one BiLSTM
        # layer over wide embeddings projected to 64, weight averaging, decay per epoch.
        "model.layers=1", "train.ema=0.995", "train.learning_rate=2e-3",
        "train.schedule.name=exponential",
        "train.schedule.decay_steps=330", "train.schedule.decay_rate=0.6",
        *args.set,
    ]
    result = None
    if args.export:
        export_dir = Path(args.export)
    else:
        config = load_task_config("segmentation", None, overrides)
        workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-cws-"))
        result = run_pipeline("segmentation", config, data_dir, workdir)
        export_dir = result.export_dir

    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    signature = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    gold = read_segmented(data_dir / args.test)
    texts = ["".join(s) for s in gold]
    chars = sum(len(t) for t in texts)
    # Batched: sentences grouped by length (as a serving batcher would), whole test set.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batches = [[texts[i] for i in order[s:s + args.batch_size]]
               for s in range(0, len(order), args.batch_size)]
    signature(text=tf.constant(batches[0]))
    predicted: dict[int, list[str]] = {}
    passes = []
    for _ in range(3):  # the median of three passes over the whole test set
        start = time.perf_counter()
        outputs = [signature(text=tf.constant(b))["segmented"] for b in batches]
        passes.append(time.perf_counter() - start)
    seconds = statistics.median(passes)
    flat = [s.decode() for out in outputs for s in out.numpy()]
    for index, line in zip(order, flat, strict=True):
        predicted[index] = line.split(" ") if line else []
    scores = word_prf(gold, [predicted[i] for i in range(len(gold))])

    single = [tf.constant([t]) for t in texts[:300]]
    latency = latency_ms_p50(lambda x: signature(text=x), single)
    report = {
        "benchmark": "cws",
        "train": args.train,
        "test": args.test,
        "f1": round(scores["f1"], 4),
        "precision": round(scores["precision"], 4),
        "recall": round(scores["recall"], 4),
        "f1_runner": round(result.test_metrics["f1"], 4) if result else None,
        "train_seconds": round(result.train_seconds, 1) if result else None,
        "epochs": result.epochs_run if result else None,
        "chars_per_second": round(chars / seconds),
        "test_chars": chars,
        "latency_ms_p50": round(latency, 2),
        "serving_batch_size": args.batch_size,
        "overrides": overrides if result else None,
        "mlflow_run_id": result.run_id if result else None,
        "export": str(export_dir),
        "machine": machine(),
    }
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
