"""Synthetic speakers of spoken digits, made on this machine by a synthesiser that a package
ships (nothing is downloaded), written as FSDD-style recordings for `data.fsdd_extra_train`.

Five training speakers are few for a recogniser that must understand a sixth. Two engines
make more:

- `kokoro`: Kokoro-82M, a neural synthesiser trained on recorded speech (`kokoro.py`): new
  voices blended from the five it ships.
- `espeak`: eSpeak NG's formant voices (`espeak.py`).

Every recording is resampled to 8 kHz, moved to its speaker's pitch (Kokoro's speakers),
trimmed of silence as FSDD's clips are and scaled to a random peak level. The
same arguments give the same files in a fresh process.

    python -m pipelines.speech.synth DST [--engine kokoro|espeak] [--speakers 20] [--per-digit 45]

writes `DST/{digit}_{speaker}_{index}.wav` and `DST/speakers.json` (each speaker's voice).
"""

from __future__ import annotations

import argparse
import importlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from pipelines.speech.audio import resample
from pipelines.speech.fsdd import SAMPLE_RATE
from pipelines.speech.warping import shift_pitch
from pipelines.speech.wavfile import write_wav

ENGINES = ("espeak", "kokoro")


def synthesizer(name: str):
    """The engine called `name` (one a process), from its module's `engine()`:
    `speakers(count, seed)`, `say(digit, speaker, rng)`, `sample_rate`."""
    if name not in ENGINES:
        raise ValueError(f"unknown synthesiser {name!r} (one of {', '.join(ENGINES)})")
    return importlib.import_module(f"{__name__}.{name}").engine()


def trim(samples: np.ndarray, rate: int, threshold: float = 0.02, margin_ms: float = 5.0):
    """`samples` without the leading and trailing stretch quieter than `threshold` of its
    peak (a `margin_ms` kept at each end), as FSDD's clips are cut."""
    peak = float(np.abs(samples).max()) if len(samples) else 0.0
    loud = np.flatnonzero(np.abs(samples) >= threshold * peak) if peak > 0 else []
    if not len(loud):
        return samples[:0]
    margin = int(margin_ms * rate / 1000)
    return samples[max(loud[0] - margin, 0) : loud[-1] + margin + 1]


def _at_8khz(samples: np.ndarray, rate: int) -> np.ndarray:
    wave, length = resample(
        tf.constant(samples[None, :], tf.float32),
        tf.constant([len(samples)]),
        tf.constant([rate]),
        SAMPLE_RATE,
    )
    return wave.numpy()[0, : int(length[0])]


def _played_at(wave: np.ndarray, speaker: dict, rng: np.random.Generator) -> np.ndarray:
    """`wave` played at the speaker's `playback` factor (varied a little), if it has one:
    pitch and formants moved together."""
    if "playback" not in speaker:
        return wave
    pitch = speaker["playback"] * rng.uniform(0.97, 1.03)
    return shift_pitch(tf.constant(wave, tf.float32), pitch).numpy()


def write_speakers(
    dst: Path, speakers: int = 20, per_digit: int = 45, seed: int = 0, engine: str = "kokoro"
) -> int:
    """Write `per_digit` recordings of each digit by each of `speakers` synthetic speakers
    of `engine` into `dst`; returns the number of files."""
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    synth = synthesizer(engine)
    rng = np.random.default_rng([seed, 1])
    written = 0
    voices = synth.speakers(speakers, seed)
    (dst / "speakers.json").write_text(json.dumps(voices, indent=1), encoding="utf-8")
    with tqdm(total=speakers * 10 * per_digit, desc=f"{engine} digits", unit="file") as bar:
        for voice in voices:
            for digit in range(10):
                for index in range(per_digit):
                    wave = _at_8khz(synth.say(digit, voice, rng), synth.sample_rate)
                    # Trimmed at 8 kHz: a fricative onset ("six") lies mostly above 4 kHz.
                    wave = trim(_played_at(wave, voice, rng), SAMPLE_RATE)
                    peak = max(float(np.abs(wave).max()), 1e-6)
                    wave = wave * (rng.uniform(0.2, 0.9) / peak)
                    name = f"{digit}_{voice['name']}_{index}.wav"
                    write_wav(dst / name, wave.astype(np.float32), SAMPLE_RATE)
                    written += 1
                    bar.update()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.speech.synth",
        description="Synthetic speakers of the ten digits, as FSDD recordings.",
    )
    parser.add_argument("dst", type=Path, help="output folder")
    parser.add_argument("--engine", choices=ENGINES, default="kokoro", help="the synthesiser")
    parser.add_argument("--speakers", type=int, default=20, help="synthetic speakers")
    parser.add_argument("--per-digit", type=int, default=45, help="recordings a digit a speaker")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    count = write_speakers(args.dst, args.speakers, args.per_digit, args.seed, args.engine)
    print(f"{count} recordings in {args.dst}")
    return 0
