"""Speech-recognition benchmark: connected FSDD digits (configs/speech-fsdd.yaml), trained
within the budget, scored and timed through the exported SavedModel.

    python bench/speech.py --data-dir ../shared/data --out F.json [--minutes 15] [--workdir W]
        [--config configs/speech-fsdd.yaml] [--set data.test_speakers=[theo] ...]
    python bench/speech.py --data-dir ../shared/data --export W/exports/speech/1 --out F.json
    python bench/speech.py --data-dir ../shared/data --out F.json --speaker-folds [--minutes 5]

Reports WER and CER (percent) on the connected-digit test set, the accuracy on FSDD's
isolated test recordings (index 0-4), the real-time factor (seconds of audio transcribed
per second, batched: utterances of similar length together, the median of three passes
over the test set) and the latency of one 2-second utterance per call, both with the
export's default (beam-search) decoder.

With `--speaker-folds`: leave-one-speaker-out over FSDD's speakers. For each, a run trained
without them (`data.test_speakers=[S]`, `--minutes` each) is scored on their test
utterances (WER, isolated digits) and, as a reference, on the other speakers' ones; the
report gives each speaker's held-out WER, their mean and the worst. No timing.

With `--synthetic-speakers N`: N synthetic speakers of the digits (`--synthetic-engine`
kokoro or espeak, made here by `pipelines.speech.synth`, `--synthetic-per-digit` recordings
a digit each) join every run's training split (`data.fsdd_extra_train`); dev and test stay
FSDD's.
"""

from __future__ import annotations

import argparse
import json
import sys

import common


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__, default_config="configs/speech-fsdd.yaml")
    p.add_argument("--batch-size", type=int, default=64, help="utterances per serving call")
    p.add_argument(
        "--speaker-folds",
        action="store_true",
        help="leave-one-speaker-out: one run per FSDD speaker, scored on that speaker",
    )
    p.add_argument(
        "--synthetic-speakers",
        type=int,
        default=0,
        help="synthetic speakers added to training",
    )
    p.add_argument("--synthetic-per-digit", type=int, default=45)
    p.add_argument("--synthetic-engine", choices=("kokoro", "espeak"), default="kokoro")
    args = p.parse_args(argv)
    if args.synthetic_speakers:
        args.set = [*args.set, f"data.fsdd_extra_train=[{synthetic_speakers(args)}]"]
    if args.speaker_folds:
        return speaker_folds(args)
    config, result, export_dir = common.train_or_export("speech", args)

    import tensorflow as tf

    from pipelines.speech.corpus import read_splits
    from pipelines.speech.metrics import cer, isolated_accuracy, wer, wer_of_speakers

    splits, isolated, _ = read_splits(common.data_dir(args), config.data, config.train.seed)
    signature = common.load_signature(export_dir)
    transcribe = transcriber(signature, args.batch_size)

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
        report["held_out_speakers"] = sorted(held_out)
        report["wer_held_out_speakers"] = _percent(
            wer_of_speakers(_speakers(test), refs, hyps, held_out)
        )
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


def synthetic_speakers(args) -> str:
    """The folder of `--synthetic-speakers` (made once under the workdir or a temporary
    folder; the same counts find the same files)."""
    import tempfile
    from pathlib import Path

    from pipelines.speech.synth import write_speakers

    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-synth-"))
    count, per_digit = args.synthetic_speakers, args.synthetic_per_digit
    folder = root / f"synthetic-{args.synthetic_engine}-{count}x{per_digit}"
    done = folder / ".complete"
    if not done.exists():
        write_speakers(folder, count, per_digit, engine=args.synthetic_engine)
        done.touch()
    return str(folder.resolve())


def transcriber(signature, batch_size: int):
    """`transcribe(utterances) -> transcripts` through an export's loaded signature."""
    import tensorflow as tf

    def transcribe(utts) -> list[str]:
        out = []
        for i in range(0, len(utts), batch_size):
            audio = tf.constant([u.path.read_bytes() for u in utts[i : i + batch_size]])
            out += [t.decode() for t in signature(audio=audio)["transcript"].numpy()]
        return out

    return transcribe


def _speakers(utts) -> list[str]:
    return [u.extra.get("speaker", "") for u in utts]


def _percent(rate: float | None, digits: int = 3) -> float | None:
    return None if rate is None else round(100 * rate, digits)


def speaker_folds(args) -> int:
    """Leave-one-speaker-out: a run per FSDD speaker trained without them, scored on them."""
    from pathlib import Path

    from pipelines.speech.corpus import read_splits
    from pipelines.speech.fsdd import list_recordings
    from pipelines.speech.metrics import isolated_accuracy, wer_of_speakers

    if args.export:
        raise SystemExit("--speaker-folds trains one run per speaker: no --export")
    if any(s.startswith("data.test_speakers=") for s in args.set):
        raise SystemExit("--speaker-folds sets data.test_speakers itself")
    base = common.recipe("speech", args)
    if not base.data.fsdd:
        raise SystemExit("--speaker-folds needs FSDD recordings (data.fsdd in the recipe)")
    src = Path(base.data.fsdd)
    src = src if src.is_absolute() else common.data_dir(args) / src
    speakers = sorted({r.speaker for r in list_recordings(src)})
    folds = _folds_done(args)
    for speaker in speakers:
        if speaker in folds:
            print(f"[bench] fold {speaker}: kept from {args.out}")
            continue
        print(
            f"[bench] fold {speaker}: training on {', '.join(s for s in speakers if s != speaker)}"
        )
        fold_args = argparse.Namespace(
            **{**vars(args), "workdir": _fold_dir(args.workdir, speaker)}
        )
        config, result, export_dir = common.train_or_export(
            "speech", fold_args, extra=[f"data.test_speakers=[{speaker}]"]
        )
        splits, isolated, _ = read_splits(common.data_dir(args), config.data, config.train.seed)
        transcribe = transcriber(common.load_signature(export_dir), args.batch_size)
        test = splits["test"]
        refs, hyps = [u.transcript for u in test], transcribe(test)
        others = set(speakers) - {speaker}
        fold = {
            "wer_held_out": _percent(wer_of_speakers(_speakers(test), refs, hyps, {speaker})),
            "wer_seen_speakers": _percent(wer_of_speakers(_speakers(test), refs, hyps, others)),
            "test_utterances_held_out": sum(s == speaker for s in _speakers(test)),
        }
        own = [u for u in isolated if u.extra.get("speaker") == speaker]
        if own:
            fold["digit_accuracy_held_out"] = round(
                100 * isolated_accuracy([u.transcript for u in own], transcribe(own)), 2
            )
        folds[speaker] = {**fold, **common.run_figures(result)}
        # Written after every fold: a six-fold run takes hours, and one cut short keeps its folds.
        common.write_report(_folds_report(args, folds, len(speakers)), args.out)
    return 0


def _folds_done(args) -> dict[str, dict]:
    """The folds an earlier, cut-short run of the same command wrote to `--out`: a rerun
    goes on from there (and the cut fold resumes from its checkpoint in `--workdir`)."""
    import json
    from pathlib import Path

    out = Path(args.out)
    if not out.exists():
        return {}
    report = json.loads(out.read_text())
    same = all(report.get(key) == value for key, value in _folds_command(args).items())
    return dict(report.get("folds", {})) if same else {}


def _folds_command(args) -> dict:
    """What makes two leave-one-speaker-out reports runs of the same command."""
    return {
        "benchmark": "speech-speaker-folds",
        "config": args.config,
        "minutes_per_fold": args.minutes,
        "overrides": args.set,
    }


def _folds_report(args, folds: dict[str, dict], speakers: int) -> dict:
    """The leave-one-speaker-out report of the folds done so far (all of them at the end)."""
    import statistics

    held_out = {s: f["wer_held_out"] for s, f in folds.items() if f["wer_held_out"] is not None}
    worst = max(held_out, key=held_out.get) if held_out else None
    return {
        **_folds_command(args),
        "folds_done": f"{len(folds)} of {speakers}",
        "folds": folds,
        "wer_held_out_mean": round(statistics.mean(held_out.values()), 3) if held_out else None,
        "wer_held_out_worst": held_out.get(worst),
        "worst_speaker": worst,
    }


def _fold_dir(workdir: str | None, speaker: str) -> str | None:
    """Each fold's run in `WORKDIR/fold-SPEAKER` (a temporary folder without --workdir)."""
    from pathlib import Path

    return str(Path(workdir) / f"fold-{speaker}") if workdir else None


if __name__ == "__main__":
    sys.exit(main())
