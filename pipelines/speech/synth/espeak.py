"""eSpeak NG speakers: the formant synthesiser the `espeakng-loader` wheel ships (library
and voice data inside it: nothing is downloaded).

Each speaker is one eSpeak voice variant (m1, f3, croak, ...) of one English accent, with a
base pitch, pitch range and speaking rate of its own; every recording varies those a little.
eSpeak carries some state, its pitch flutter, from one utterance to the next, so the same
arguments give the same files in a fresh process, and a second batch in one process differs
slightly.
"""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

import numpy as np

from pipelines.speech.fsdd import DIGIT_WORDS

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
    """One eSpeak NG engine (a process has one): `speakers(count, seed)` draws voices,
    `say(digit, speaker, rng)` -> float32 samples at `sample_rate` (22050 Hz)."""

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

    def speak(self, text: str, voice: str, rate: int, pitch: int, range_: int) -> np.ndarray:
        """`text` in `voice` -> int16 samples."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"eSpeak NG has no voice {voice!r}")
        for parameter, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, range_)):
            self.lib.espeak_SetParameter(parameter, int(value), 0)
        self._chunks = []
        data = text.encode()
        self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, 0, None, None)
        self.lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)

    def speakers(self, count: int, seed: int = 0) -> list[dict]:
        return speaker_voices(count, seed)

    def say(self, digit: int, speaker: dict, rng: np.random.Generator) -> np.ndarray:
        """One reading of `digit` by `speaker`, rate, pitch and range varied by `rng`."""
        samples = self.speak(
            DIGIT_WORDS[digit],
            speaker["voice"],
            np.clip(speaker["rate"] + rng.integers(-20, 21), 80, 260),
            np.clip(speaker["pitch"] + rng.integers(-8, 9), 0, 99),
            np.clip(speaker["range"] + rng.integers(-10, 11), 0, 99),
        )
        return samples.astype(np.float32) / 32768.0


@functools.cache
def engine() -> Synthesizer:
    return Synthesizer()


def speaker_voices(count: int, seed: int = 0) -> list[dict]:
    """`count` synthetic speakers: voice (`accent+variant`), base rate (words a minute),
    pitch and pitch range (eSpeak's 0-99), drawn by `seed`."""
    rng = np.random.default_rng(seed)
    variants = engine().variants

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
