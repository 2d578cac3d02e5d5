"""16-bit PCM WAV files to and from numpy, with Python's `wave` module (data preparation
and tests; the models read WAV bytes in the graph, `pipelines.speech.audio`)."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np

from pipelines.core.textio import DataError


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1) and the sample rate; DataError names the file."""
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2:
                raise DataError(f"{path}: {8 * w.getsampwidth()}-bit samples, not 16-bit PCM")
            channels, rate = w.getnchannels(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (wave.Error, EOFError, OSError) as exc:
        raise DataError(f"{path}: not a readable WAV file ({exc})") from None
    samples = np.frombuffer(raw[: len(raw) // (2 * channels) * 2 * channels], "<i2")
    return samples.reshape(-1, channels).mean(axis=1).astype(np.float32) / 32768.0, rate


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """Mono float samples in [-1, 1] -> the bytes of a 16-bit PCM WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(to_int16(samples).tobytes())
    return buffer.getvalue()


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] -> little-endian int16, clipped."""
    return np.clip(np.round(np.asarray(samples) * 32767.0), -32768, 32767).astype("<i2")


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono float samples in [-1, 1] as a 16-bit PCM WAV file."""
    Path(path).write_bytes(wav_bytes(samples, sample_rate))
