"""Slot-filling benchmark: train a recipe (configs/slots-atis.yaml, configs/slots-snips.yaml)
within its time budget, selecting on `dev`; report slot F1, intent and sentence accuracy on
`test` (on `dev` where the corpus has no test split, as SNIPS here), then time the exported
SavedModel: batched throughput and the latency of one utterance per call.

    python bench/slots.py --config configs/slots-atis.yaml --data-dir ../shared/data --out F.json
        [--minutes 10] [--workdir W] [--set key=value ...]
    python bench/slots.py --config configs/slots-atis.yaml --data-dir ../shared/data \\
        --export W/exports/slots/1 --out F.json      # time an export only

Quality figures are percentages (the way papers quote them). `--set train.epochs=N
--set train.schedule.name=cosine` trains N epochs with the step-paced cosine instead.
"""

from __future__ import annotations

import sys

import common


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__, default_config="configs/slots-atis.yaml")
    p.add_argument("--batch-size", type=int, default=256, help="utterances per serving call")
    args = p.parse_args(argv)
    config, result, export_dir = common.train_or_export("slots", args)

    import tensorflow as tf

    from pipelines.slots.reader import read_split

    corpus = common.data_dir(args) / config.data.corpus
    split = config.data.test if (corpus / config.data.test).is_dir() else config.data.validation
    texts = [u.text for u in read_split(corpus / split)]
    signature = common.load_signature(export_dir)
    batches = [
        tf.constant(texts[i : i + args.batch_size]) for i in range(0, len(texts), args.batch_size)
    ]
    timing = common.time_signature(
        lambda b: signature(text=b)["slots"].numpy(),
        batches,
        items=len(texts),
        singles=[tf.constant([t]) for t in texts[:300]],
    )
    report = {"benchmark": "slots", "corpus": config.data.corpus, "split": split}
    if result is not None:
        m = result.test_metrics
        report.update(
            {
                "slot_f1": round(100 * m["slot_f1"], 2),
                "intent_accuracy": round(100 * m["intent_accuracy"], 2),
                "sentence_accuracy": round(100 * m["sentence_accuracy"], 2),
                **common.run_figures(result),
            }
        )
    report.update(
        {
            "utterances_per_second": round(timing.items_per_second, 1),
            **timing.latency_figures(3),
            "minutes_budget": config.train.max_minutes,
            "serving": common.export_metadata(export_dir).get("serving"),
            "config": args.config,
            "overrides": args.set,
        }
    )
    common.write_report(report, args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
