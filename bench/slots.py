"""Slot-filling benchmark: train on `train` within a time budget (selecting on `dev`), report
slot F1, intent and sentence accuracy on `test` (on `dev` where the corpus has no test split,
as SNIPS here), then time the exported SavedModel: batched throughput and the median
latency of one utterance per call.

    python bench/slots.py --data-dir ../shared/data --corpus atis --minutes 10 --out atis.json

Quality figures are percentages (the way papers quote them); `--set key=value` overrides
the tuned per-corpus settings below.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import data_dir_arg, latencies_ms, machine, write_report  # noqa: E402

# Tuned on this project's 2-core CPU machine. Training runs until the budget ends, with a
# cosine decay paced by the share of the budget spent (`cosine_budget`), so a slow spell
# on a shared machine cannot stop training at a high learning rate; the weights of the
# best dev epoch are kept. Batches of 32-64: a CPU step costs about the same at 16, so
# wider batches see more utterances per second; weight averaging (EMA) is what is
# evaluated and exported.
COMMON = ["train.ema=0.995", "train.schedule.name=cosine_budget",
          "train.early_stopping_patience=0"]
PRESETS: dict[str, list[str]] = {
    "atis": [*COMMON, "train.batch_size=32", "train.learning_rate=4e-3"],
    # More out-of-vocabulary names (artists, playlists): more word dropout for the chars.
    "snips": [*COMMON, "train.batch_size=64", "train.learning_rate=6e-3",
              "data.word_dropout=0.1"],
}
# An upper bound only: the time budget ends training.
MAX_EPOCHS = 1000


def _settings(corpus: str, minutes: float, extra: list[str]) -> list[str]:
    return [f"data.corpus=slots/{corpus}", f"train.max_minutes={minutes}",
            f"run_name=bench-{corpus}", *PRESETS.get(corpus, []), *extra]


def _time_export(export_dir: Path, texts: list[str], batch: int = 256,
                 single_calls: int = 300) -> dict[str, float]:
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the ops the export uses)

    serve = tf.saved_model.load(str(export_dir)).signatures["serving_default"]
    batches = [tf.constant(texts[i:i + batch]) for i in range(0, len(texts), batch)]
    for b in batches[:2]:
        serve(text=b)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < 5.0 or done < len(texts):
        for b in batches:
            serve(text=b)
            done += int(b.shape[0])
    per_second = done / (time.perf_counter() - started)
    singles = [tf.constant([t]) for t in texts[:single_calls]]
    latencies = latencies_ms(lambda s: serve(text=s)["slots"].numpy(), singles, warmup=20)
    return {"utterances_per_second": per_second,
            "latency_ms_p50": statistics.median(latencies),
            "latency_ms_p90": statistics.quantiles(latencies, n=10)[-1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir",
                        help="folder holding slots/<corpus>/ (default: $TFPIPE_DATA_DIR)")
    parser.add_argument("--corpus", required=True, help="atis, snips (or any slots/<name>)")
    parser.add_argument("--minutes", type=float, required=True, help="training time budget")
    parser.add_argument("--out", required=True, help="JSON file for the figures")
    parser.add_argument("--workdir", help="keep the run and its export here (default: temp)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (repeatable)")
    args = parser.parse_args(argv)
    data_dir = data_dir_arg(args.data_dir)

    from pipelines.core.runner import load_task_config, run_pipeline
    from pipelines.slots.reader import read_split

    settings = _settings(args.corpus, args.minutes, args.set)
    if not any(s.startswith("train.epochs=") for s in args.set):
        settings.append(f"train.epochs={MAX_EPOCHS}")
    elif not any(s.startswith("train.schedule.name=") for s in args.set):
        settings.append("train.schedule.name=cosine")  # a fixed epoch count: decay by steps
    config = load_task_config("slots", None, settings)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        result = run_pipeline("slots", config, data_dir, workdir)
        corpus_dir = data_dir / "slots" / args.corpus
        has_test = (corpus_dir / config.data.test).is_dir()
        split = config.data.test if has_test else config.data.validation
        texts = [u.text for u in read_split(corpus_dir / split)]
        timing = _time_export(result.export_dir, texts)
        m = result.test_metrics
        figures = {
            "corpus": args.corpus,
            "split": split,
            "slot_f1": round(100 * m["slot_f1"], 2),
            "intent_accuracy": round(100 * m["intent_accuracy"], 2),
            "sentence_accuracy": round(100 * m["sentence_accuracy"], 2),
            "train_seconds": round(result.train_seconds, 1),
            "epochs": result.epochs_run,
            "utterances_per_second": round(timing["utterances_per_second"], 1),
            "latency_ms_p50": round(timing["latency_ms_p50"], 3),
            "latency_ms_p90": round(timing["latency_ms_p90"], 3),
            "minutes_budget": args.minutes,
            "settings": settings,
            "export_dir": str(result.export_dir) if args.workdir else None,
            "mlflow_run_id": result.run_id,
            "machine": machine(),
        }
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    write_report(figures, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
