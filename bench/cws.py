"""Chinese word segmentation benchmark on the SIGHAN corpora in ../shared/data/cws.

    python bench/cws.py --data-dir ../shared/data --out cws.json [--config configs/cws-pku.yaml]
        [--minutes 15] [--workdir W] [--set key=value ...]
    python bench/cws.py --data-dir ../shared/data --export W/exports/segmentation/1 --out F.json

Trains the recipe (`tfpipe run segmentation --config configs/cws-pku.yaml` does the same),
scores the test gold with the bakeoff word F1 through the exported SavedModel, and times it:
batched over the whole test set (characters per second; sentences grouped by length as a
serving batcher would) and one sentence per call (p50 latency).
"""

from __future__ import annotations

import sys

import common


def jieba_baseline(gold: list[list[str]], texts: list[str]) -> tuple[float, float]:
    """(word F1, characters per second) of jieba 0.42.1's default mode on `texts`: the
    median of three passes, after loading its dictionary."""
    import statistics
    import time

    import jieba

    from pipelines.segmentation.metrics import word_prf

    jieba.setLogLevel(60)
    jieba.initialize()
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        words = [jieba.lcut(t) for t in texts]
        seconds.append(time.perf_counter() - started)
    chars = sum(len(t) for t in texts)
    return word_prf(gold, words)["f1"], chars / statistics.median(seconds)


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__, default_config="configs/cws-pku.yaml")
    p.add_argument("--batch-size", type=int, default=1024, help="sentences per serving call")
    args = p.parse_args(argv)
    config, result, export_dir = common.train_or_export("segmentation", args)

    import tensorflow as tf

    from pipelines.segmentation.metrics import word_prf
    from pipelines.segmentation.reader import read_segmented

    signature = common.load_signature(export_dir)
    serving = common.export_metadata(export_dir).get("serving", {})
    gold = read_segmented(common.data_dir(args) / config.data.test)
    texts = ["".join(s) for s in gold]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batches = [
        tf.constant([texts[i] for i in order[s : s + args.batch_size]])
        for s in range(0, len(order), args.batch_size)
    ]
    segmented = [s.decode() for b in batches for s in signature(text=b)["segmented"].numpy()]
    predicted: list[list[str]] = [[] for _ in texts]
    for index, line in zip(order, segmented, strict=True):
        predicted[index] = line.split(serving.get("separator", " ")) if line else []
    scores = word_prf(gold, predicted)

    timing = common.time_signature(
        lambda b: signature(text=b)["segmented"].numpy(),
        batches,
        items=sum(len(t) for t in texts),
        singles=[tf.constant([t]) for t in texts[:300]],
    )
    jieba_f1, jieba_speed = jieba_baseline(gold, texts)
    report = {
        "benchmark": "cws",
        "train": config.data.train,
        "test": config.data.test,
        "f1": round(scores["f1"], 4),
        "precision": round(scores["precision"], 4),
        "recall": round(scores["recall"], 4),
        "f1_runner": round(result.test_metrics["f1"], 4) if result else None,
        **common.run_figures(result),
        "chars_per_second": round(timing.items_per_second),
        "test_chars": timing.items,
        **timing.latency_figures(),
        "serving_batch_size": args.batch_size,
        # The tool a user would otherwise pick, timed in the same run (one process).
        "jieba_f1": round(jieba_f1, 4),
        "jieba_chars_per_second": round(jieba_speed),
        "speed_vs_jieba": round(timing.items_per_second / jieba_speed, 2),
        "fused_lstm": serving.get("fused_lstm"),
        "config": args.config,
        "overrides": args.set,
        "export": str(export_dir),
    }
    common.write_report(report, args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
