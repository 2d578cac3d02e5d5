"""Writes the bundled speech sample: synthetic "spoken digits", small enough to ship and to
learn in well under a minute on a CPU, in the manifest layout of the speech pipeline.

Each digit word is its own sound pattern: a few segments of voiced sound (harmonics of a
pitch shaped by two formant peaks that glide from one value to another) and of band-passed
noise (fricative-like), in a fixed order per word. Every utterance is one synthetic
"voice" (pitch and formant scale), one to three words (every word about as often as the
others) at a jittered speed and level,
joined by short pauses, over a faint noise floor. Nothing comes from a real recording.

    python data/speech/make_sample.py   # rewrites data/speech/sample/ (same seed, same files)
"""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import numpy as np

RATE = 8000
SEED = 20240611
COUNTS = {"train": 48, "dev": 12, "test": 12}
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
VOICES = {"low": (120.0, 0.96), "mid": (140.0, 1.0), "high": (165.0, 1.05)}  # pitch Hz, formants

# Segments: ("v", weight, (F1 start, F1 end), (F2 start, F2 end)) voiced, or
# ("n", weight, centre Hz, bandwidth Hz) noise; weights share the word's duration.
PATTERNS = {
    "zero": [
        ("n", 0.25, 3200, 900),
        ("v", 0.4, (400, 500), (2000, 1300)),
        ("v", 0.35, (500, 450), (1000, 850)),
    ],
    "one": [("v", 0.4, (350, 600), (800, 1200)), ("v", 0.6, (600, 300), (1300, 1000))],
    "two": [("n", 0.15, 1600, 1200), ("v", 0.85, (300, 320), (1100, 850))],
    "three": [
        ("n", 0.28, 3500, 1000),
        ("v", 0.24, (450, 400), (1600, 2000)),
        ("v", 0.24, (320, 300), (2300, 2350)),
        ("v", 0.24, (290, 270), (2500, 2600)),
    ],
    "four": [("n", 0.3, 2300, 1800), ("v", 0.7, (550, 500), (850, 1250))],
    "five": [
        ("n", 0.25, 2100, 1400),
        ("v", 0.45, (750, 500), (1200, 2000)),
        ("v", 0.3, (450, 420), (1500, 1400)),
    ],
    "six": [("n", 0.35, 3500, 700), ("v", 0.3, (400, 420), (2000, 1900)), ("n", 0.35, 3300, 900)],
    "seven": [
        ("n", 0.3, 3500, 700),
        ("v", 0.3, (550, 520), (1800, 1700)),
        ("v", 0.4, (480, 300), (1500, 1100)),
    ],
    "eight": [("v", 0.75, (520, 350), (1900, 2300)), ("n", 0.25, 2600, 800)],
    "nine": [
        ("v", 0.25, (280, 300), (1000, 1100)),
        ("v", 0.5, (750, 450), (1300, 2000)),
        ("v", 0.25, (300, 280), (1000, 950)),
    ],
}


def fade(n: int, edge: int) -> np.ndarray:
    """A window of `n` ones with raised-cosine edges of `edge` samples (no clicks)."""
    window = np.ones(n)
    edge = min(edge, n // 2)
    if edge:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, edge))
        window[:edge], window[n - edge :] = ramp, ramp[::-1]
    return window


def voiced(
    n: int, pitch: float, f1: tuple[float, float], f2: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """Harmonics of a slightly wavering pitch, each weighted by two gliding formant peaks."""
    t = np.linspace(0.0, 1.0, n)
    f0 = pitch * (1.0 + 0.03 * np.sin(2 * np.pi * rng.uniform(1, 3) * t) - 0.05 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    out = np.zeros(n)
    for k in range(1, int(3800 / pitch) + 1):
        freq = k * f0
        gain = sum(
            a / (1.0 + ((freq - (lo + (hi - lo) * t)) / 120.0) ** 2)
            for a, (lo, hi) in ((1.0, f1), (0.6, f2))
        )
        out += gain * np.sin(k * phase) * (freq < 3900)
    return out / (np.abs(out).max() + 1e-9)


def noise(n: int, centre: float, width: float, rng: np.random.Generator) -> np.ndarray:
    """White noise band-passed around `centre` (FFT mask)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    hz = np.fft.rfftfreq(n, 1.0 / RATE)
    spectrum *= np.exp(-0.5 * ((hz - centre) / (width / 2.0)) ** 2)
    out = np.fft.irfft(spectrum, n)
    return 0.6 * out / (np.abs(out).max() + 1e-9)


def word(name: str, voice: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    pitch, scale = voice
    pitch *= rng.uniform(0.93, 1.07)
    seconds = 0.32 * rng.uniform(0.9, 1.1)
    parts = []
    for segment in PATTERNS[name]:
        n = max(int(segment[1] * seconds * RATE), 32)
        if segment[0] == "v":
            f1 = tuple(f * scale for f in segment[2])
            f2 = tuple(f * scale for f in segment[3])
            part = voiced(n, pitch, f1, f2, rng)
        else:
            part = noise(n, segment[2] * scale, segment[3], rng)
        parts.append(part * fade(n, int(0.01 * RATE)))
    return np.concatenate(parts)


def balanced_digits(rng: np.random.Generator):
    """Digits in shuffled rounds of all ten, so every word is about as frequent."""
    while True:
        yield from rng.permutation(10)


def utterance(rng: np.random.Generator, stream) -> tuple[np.ndarray, str, str]:
    voice_name = list(VOICES)[rng.integers(len(VOICES))]
    digits = [next(stream) for _ in range(rng.integers(1, 4))]
    pieces = [np.zeros(int(rng.uniform(0.03, 0.08) * RATE))]
    for i, d in enumerate(digits):
        if i:
            pieces.append(np.zeros(int(rng.uniform(0.08, 0.2) * RATE)))
        pieces.append(rng.uniform(0.25, 0.45) * word(WORDS[d], VOICES[voice_name], rng))
    pieces.append(np.zeros(int(rng.uniform(0.03, 0.08) * RATE)))
    audio = np.concatenate(pieces)
    audio += 0.002 * rng.standard_normal(len(audio))
    return audio, " ".join(WORDS[d] for d in digits), voice_name


def write_wav(path: Path, audio: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.clip(np.round(audio * 32767), -32768, 32767).astype("<i2").tobytes())


def main() -> None:
    out = Path(__file__).resolve().parent / "sample"
    if out.exists():
        shutil.rmtree(out)
    rng = np.random.default_rng(SEED)
    for split, count in COUNTS.items():
        (out / split).mkdir(parents=True)
        rows = ["path\ttranscript\tspeaker"]
        stream = balanced_digits(rng)
        for n in range(count):
            audio, transcript, voice_name = utterance(rng, stream)
            name = f"{split}/{n:03d}.wav"
            write_wav(out / name, audio)
            rows.append(f"{name}\t{transcript}\t{voice_name}")
        (out / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"wrote {sum(COUNTS.values())} utterances to {out}")


if __name__ == "__main__":
    main()
