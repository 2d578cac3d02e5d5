"""Translation benchmark: Multi30k English-German, trained within the budget, selected on
`val`, scored on `test_2016_flickr` through the exported SavedModel.

    python bench/translation.py --data-dir ../shared/data --model transformer --minutes 30 \
        --out F.json [--workdir W] [--set serving.beam_width=4 ...]
    python bench/translation.py --data-dir ../shared/data --model rnn_attention --out F.json
    python bench/translation.py --data-dir ../shared/data --export W/exports/translation/1 \
        --model transformer --out F.json [--split val]

Reports sacreBLEU BLEU and chrF (0-100, with their signatures) of the export's default
decoder (beam search, `serving.beam_width`) on detokenized output against the raw
references; training time and speed (subword tokens, source and target, per second);
sentences per second batched (64 sentences of similar length a call, the median of three
passes over the test set) and the median latency of one sentence per call. `--split val`
scores the dev set instead, to choose serving options (beam width, length penalty) of
re-exports (`tfpipe export translation --run R --set serving.length_penalty=1.0`) without
looking at the test set.
"""

from __future__ import annotations

import json
import sys

import common

RECIPES = {
    "transformer": "configs/translation-multi30k-transformer.yaml",
    "rnn_attention": "configs/translation-multi30k-rnn-attention.yaml",
}


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__)
    p.add_argument(
        "--model",
        choices=sorted(RECIPES),
        default="transformer",
        help="which recipe (configs/translation-multi30k-*.yaml) unless --config",
    )
    p.add_argument("--batch-size", type=int, default=64, help="sentences per serving call")
    p.add_argument(
        "--split",
        help="the corpus split to score (default: the recipe's data.test); "
        "val to choose serving options without the test set",
    )
    args = p.parse_args(argv)
    args.config = args.config or RECIPES[args.model]
    config, result, export_dir = common.train_or_export("translation", args)

    import numpy as np
    import tensorflow as tf

    from pipelines.translation.corpus import read_parallel
    from pipelines.translation.metrics import scored
    from pipelines.translation.task import in_length_order

    d = config.data
    split = args.split or d.test
    pairs = read_parallel(common.data_dir(args) / d.corpus, split, d.source, d.target)
    signature = common.load_signature(export_dir)
    batches: list[tf.Tensor] = []  # the length-ordered batches, timed again below

    def answers(ranked: list[str]):
        for start in range(0, len(ranked), args.batch_size):
            batches.append(tf.constant(ranked[start : start + args.batch_size]))
            yield [t.decode("utf-8") for t in signature(text=batches[-1])["translation"].numpy()]

    hyps = in_length_order(pairs.sources, answers)
    scores = scored(pairs.targets, hyps)
    report = {
        "benchmark": "translation",
        "config": args.config,
        "model": config.model.name,
        "split": split,
        "bleu": round(scores["bleu"][0], 2),
        "chrf": round(scores["chrf"][0], 2),
        "bleu_signature": scores["bleu"][1],
        "chrf_signature": scores["chrf"][1],
    }
    if result is not None:
        kept = json.loads((result.model_dir / "trained_model.json").read_text())
        sources, targets = result.task.ids["train"]
        tokens_per_pair = float(
            np.mean([len(s) + len(t) + 1 for s, t in zip(sources, targets, strict=True)])
        )
        figures = common.run_figures(result)
        per_second = figures.get("train_examples_per_second")
        report.update(
            {
                "params": kept["params"],
                **figures,
                "train_tokens_per_second": (
                    round(per_second * tokens_per_pair, 1) if per_second else None
                ),
                "train_pairs": len(sources),
                "train_pairs_left_out": result.task.filtered["train"],
                "test_bleu_runner": round(result.test_metrics["bleu"], 2),
            }
        )
    timing = common.time_signature(
        lambda b: signature(text=b)["translation"].numpy(),
        batches,
        items=len(pairs),
        singles=[tf.constant([s]) for s in pairs.sources[:200]],
    )
    report.update(
        {
            "sentences_per_second": round(timing.items_per_second, 1),
            **timing.latency_figures(),
            "test_sentences": len(pairs),
            "examples": [
                {"source": pairs.sources[i], "reference": pairs.targets[i], "translation": hyps[i]}
                for i in range(3)
            ],
            "serving": common.export_metadata(export_dir).get("serving"),
            "overrides": args.set,
        }
    )
    common.write_report(report, args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
