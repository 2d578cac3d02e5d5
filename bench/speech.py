"""Speech-recognition benchmark: connected FSDD digits (configs/speech-fsdd.yaml), trained
within the budget, scored and timed through the exported SavedModel.

    python bench/speech.py --data-dir ../shared/data --out F.json [--minutes 15] [--workdir W]
        [--config configs/speech-fsdd.yaml] [--set data.test_speakers=[theo] ...]
    python bench/speech.py --data-dir ../shared/data --export W/exports/speech/1 --out F.json

Reports WER and CER (percent) on the connected-digit test set, the accuracy on FSDD's
isolated test recordings (index 0-4), the real-time factor (seconds of audio transcribed
per second, batched: utterances of similar length together, the median of three passes
over the test set) and the latency of one 2-second utterance per call, both with the
export's default (beam-search) decoder.
"""

from __future__ import annotations

import json
import sys

import common


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__, default_config="configs/speech-fsdd.yaml")
    p.add_argument("--batch-size", type=int, default=64, help="utterances per serving call")
    args = p.parse_args(argv)
    config, result, export_dir = common.train_or_export("speech", args)

    import tensorflow as tf

    from pipelines.speech.corpus import read_splits
    from pipelines.speech.metrics import cer, isolated_accuracy, wer

    splits, isolated, _ = read_splits(common.data_dir(args), config.data, config.train.seed)
    signature = common.load_signature(export_dir)

    def transcribe(utts) -> list[str]:
        out = []
        for i in range(0, len(utts), args.batch_size):
            audio = tf.constant([u.path.read_bytes() for u in utts[i : i + args.batch_size]])
            out += [t.decode() for t in signature(audio=audio)["transcript"].numpy()]
        return out

    test = splits["test"]
    refs, hyps = [u.transcript for u in test], transcribe(test)
    report = {
        "benchmark": "speech",
        "config": args.config,
        "wer": round(100 * wer(refs, hyps), 3),
        "cer": round(100 * cer(refs, hyps), 3),
    }
    if isolated:
        report["digit_accuracy"] = round(
            100 * isolated_accuracy([u.transcript for u in isolated], transcribe(isolated)), 2
        )
    held_out = set(config.data.test_speakers)
    if held_out:
        pairs = [
            (r, h)
            for u, r, h in zip(test, refs, hyps, strict=True)
            if u.extra.get("speaker") in held_out
        ]
        report["held_out_speakers"] = sorted(held_out)
        report["wer_held_out_speakers"] = round(100 * wer(*map(list, zip(*pairs, strict=True))), 3)
    if result is not None:
        kept = json.loads((result.model_dir / "trained_model.json").read_text())
        report.update(
            {
                "params": kept["params"],
                **common.run_figures(result),
                "test_wer_runner": round(100 * result.test_metrics["wer"], 3),
            }
        )

    # Batched as a serving batcher would: utterances of similar length together.
    by_length = sorted(test, key=lambda u: u.seconds)
    batches = [
        tf.constant([u.path.read_bytes() for u in by_length[i : i + args.batch_size]])
        for i in range(0, len(by_length), args.batch_size)
    ]
    # One 2-second utterance per call: the test utterances closest to 2 s.
    two_seconds = sorted(test, key=lambda u: abs(u.seconds - 2.0))[:100]
    timing = common.time_signature(
        lambda b: signature(audio=b)["transcript"].numpy(),
        batches,
        items=sum(u.seconds for u in test),
        singles=[tf.constant([u.path.read_bytes()]) for u in two_seconds],
    )
    report.update(
        {
            "realtime_factor": round(timing.items_per_second, 1),
            **timing.latency_figures(),
            "latency_utterance_seconds": round(
                sum(u.seconds for u in two_seconds) / len(two_seconds), 2
            ),
            "test_utterances": len(test),
            "test_audio_seconds": round(sum(u.seconds for u in test), 1),
            "serving": common.export_metadata(export_dir).get("serving"),
            "overrides": args.set,
        }
    )
    common.write_report(report, args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
