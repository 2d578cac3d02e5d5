"""Synthetic speakers of spoken digits, made on this machine with eSpeak NG (the formant
synthesiser the `espeakng-loader` wheel ships, library and voice data inside it: nothing is
downloaded), written as FSDD-style recordings for `data.fsdd_extra_train`.

Five training speakers are few for a recogniser that must understand a sixth. Each
synthetic speaker is one eSpeak voice variant (m1, f3, croak, ...) of one English accent, with
a base pitch, pitch range and speaking rate of its own; every recording varies those a
little, is resampled to 8 kHz, trimmed of silence as FSDD's clips are and scaled to a random
peak level. The same arguments give the same files in a fresh process (eSpeak carries some
state, its pitch flutter, from one utterance to the next, so a second batch in one process
differs slightly).

    python -m pipelines.speech.synth DST [--speakers 20] [--per-digit 45] [--seed 0]

writes `DST/{digit}_{speaker}_{index}.wav` (speakers `synthNN`).
"""

from __future__ import annotations

import argparse
import ctypes
import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from pipelines.speech.audio import resample
from pipelines.speech.fsdd import DIGIT_WORDS, SAMPLE_RATE
from pipelines.speech.wavfile import write_wav

ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan", "en-us-nyc")
# Variants that do not sound like a person speaking (robots, whispers, effects) are left out.
_NOT_SPEECH = ("robot", "robosoft", "demonic", "whisper", "mr serious")

# eSpeak NG's API (speak_lib.h): synchronous output to a callback; parameter ids.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_RATE, _PITCH, _RANGE = 1, 3, 4
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class Synthesizer:
    """One eSpeak NG engine (a process has one): `say(text, voice, rate, pitch, range_)`
    -> int16 samples at `sample_rate` (22050 Hz)."""

    def __init__(self):
        try:
            import espeakng_loader
        except ImportError as exc:
            raise RuntimeError(
                "synthetic speakers need eSpeak NG: pip install 'tfpipelines[speech-synth]'"
            ) from exc
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path()
        self.sample_rate = self.lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(), 0
        )
        if self.sample_rate <= 0:
            raise RuntimeError(f"eSpeak NG did not start (data {data})")
        self.variants = sorted(
            p.name
            for p in (Path(data) / "voices" / "!v").iterdir()
            if not any(word in p.name.lower() for word in _NOT_SPEECH)
        )
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # kept: eSpeak holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, count, _events) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    def say(self, text: str, voice: str, rate: int, pitch: int, range_: int) -> np.ndarray:
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"eSpeak NG has no voice {voice!r}")
        for parameter, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, range_)):
            self.lib.espeak_SetParameter(parameter, int(value), 0)
        self._chunks = []
        data = text.encode()
        self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


@functools.cache
def synthesizer() -> Synthesizer:
    return Synthesizer()


def trim(samples: np.ndarray, rate: int, threshold: float = 0.02, margin_ms: float = 5.0):
    """`samples` without the leading and trailing stretch quieter than `threshold` of its
    peak (a `margin_ms` kept at each end), as FSDD's clips are cut."""
    peak = float(np.abs(samples).max()) if len(samples) else 0.0
    loud = np.flatnonzero(np.abs(samples) >= threshold * peak) if peak > 0 else []
    if not len(loud):
        return samples[:0]
    margin = int(margin_ms * rate / 1000)
    return samples[max(loud[0] - margin, 0) : loud[-1] + margin + 1]


def speaker_voices(count: int, seed: int = 0) -> list[dict]:
    """`count` synthetic speakers: voice (`accent+variant`), base rate (words a minute),
    pitch and pitch range (eSpeak's 0-99), drawn by `seed`."""
    rng = np.random.default_rng(seed)
    variants = synthesizer().variants

    def pick(options):
        return options[rng.integers(len(options))]

    return [
        {
            "name": f"synth{i:02d}",
            "voice": f"{pick(ACCENTS)}+{pick(variants)}",
            "rate": int(rng.integers(110, 200)),
            "pitch": int(rng.integers(10, 90)),
            "range": int(rng.integers(15, 85)),
        }
        for i in range(count)
    ]


def write_speakers(dst: Path, speakers: int = 20, per_digit: int = 45, seed: int = 0) -> int:
    """Write `per_digit` recordings of each digit by each of `speakers` synthetic speakers
    into `dst`; returns the number of files."""
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    engine = synthesizer()
    rng = np.random.default_rng([seed, 1])
    written = 0
    voices = speaker_voices(speakers, seed)
    with tqdm(total=speakers * 10 * per_digit, desc="synthetic digits", unit="file") as bar:
        for voice in voices:
            for digit, word in enumerate(DIGIT_WORDS):
                for index in range(per_digit):
                    samples = engine.say(
                        word,
                        voice["voice"],
                        np.clip(voice["rate"] + rng.integers(-20, 21), 80, 260),
                        np.clip(voice["pitch"] + rng.integers(-8, 9), 0, 99),
                        np.clip(voice["range"] + rng.integers(-10, 11), 0, 99),
                    )
                    wave, length = resample(
                        tf.constant(samples[None, :] / 32768.0, tf.float32),
                        tf.constant([len(samples)]),
                        tf.constant([engine.sample_rate]),
                        SAMPLE_RATE,
                    )
                    # Trimmed at 8 kHz: a fricative onset ("six") lies mostly above 4 kHz.
                    wave = trim(wave.numpy()[0, : int(length[0])], SAMPLE_RATE)
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
        description="Synthetic speakers of the ten digits (eSpeak NG), as FSDD recordings.",
    )
    parser.add_argument("dst", type=Path, help="output folder")
    parser.add_argument("--speakers", type=int, default=20, help="synthetic speakers")
    parser.add_argument("--per-digit", type=int, default=45, help="recordings a digit a speaker")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    count = write_speakers(args.dst, args.speakers, args.per_digit, args.seed)
    print(f"{count} recordings in {args.dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
