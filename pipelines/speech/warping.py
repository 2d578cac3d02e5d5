"""Time and frequency warps of one waveform `[T]` for training-time perturbation: speed
(tempo and pitch together), tempo alone, pitch alone, and vocal-tract-length perturbation
(VTLP: the spectrum's frequency axis stretched).

Tempo and the spectral warps are phase-vocoder resyntheses: an STFT (256-sample Hann frames
every 64 samples), magnitudes moved along time or frequency, each bin's phase advanced at the
instantaneous frequency it carries (scaled as the warp scales it), and overlap-add back. The
factors are relative (no sample rate needed); VTLP's warp is piecewise linear in frequency
(Jaitly and Hinton 2013), bending at `tfmodels.speech.features.VTLP_BEND` of the Nyquist
frequency so that the band edge stays where it is.
"""

from __future__ import annotations

import math

import tensorflow as tf

from tfmodels.speech.features import vtlp_source

FRAME, HOP = 256, 64


def play_at(waveform: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """`waveform` played `factor` times as fast (1/factor as long, factor times the pitch),
    by linear interpolation."""
    n = tf.shape(waveform)[0]
    width = tf.maximum(tf.cast(tf.round(tf.cast(n, tf.float32) / factor), tf.int32), 1)
    at = tf.range(width, dtype=tf.float32) * factor
    left = tf.minimum(tf.cast(tf.floor(at), tf.int32), tf.maximum(n - 1, 0))
    right = tf.minimum(left + 1, tf.maximum(n - 1, 0))
    share = at - tf.cast(left, tf.float32)
    padded = tf.concat([waveform, [0.0]], 0)  # an empty waveform stays silent
    return tf.gather(padded, left) * (1.0 - share) + tf.gather(padded, right) * share


def _fit(waveform: tf.Tensor, length: tf.Tensor) -> tf.Tensor:
    """`waveform` cut or zero-padded to `length` samples."""
    waveform = waveform[:length]
    return tf.pad(waveform, [[0, length - tf.shape(waveform)[0]]])


def _advance() -> tf.Tensor:
    """`[K]` phase each STFT bin's own frequency advances in one hop."""
    return 2.0 * math.pi * HOP * tf.range(FRAME // 2 + 1, dtype=tf.float32) / FRAME


def _wrap(phase: tf.Tensor) -> tf.Tensor:
    return phase - 2.0 * math.pi * tf.round(phase / (2.0 * math.pi))


def _resynthesise(waveform: tf.Tensor, length: tf.Tensor, change) -> tf.Tensor:
    """`change(magnitudes [F, K], phase steps [F, K], first phases [K])` -> (magnitudes,
    phase steps, first phases, time scale) of a new STFT, overlap-added back to `length`
    samples. Phase step t (frame t to t + 1) is each bin's instantaneous frequency times the
    hop. Waveforms
    shorter than two frames are returned as they are (fitted to `length`)."""
    n = tf.shape(waveform)[0]
    pad = FRAME - HOP

    def warped():
        padded = tf.pad(waveform, [[pad, pad]])
        spec = tf.signal.stft(padded, FRAME, HOP, FRAME, pad_end=True)
        magnitude, phase = tf.abs(spec), tf.math.angle(spec)
        advance = _advance()
        step = advance + _wrap(phase[1:] - phase[:-1] - advance)
        step = tf.concat([step, step[-1:]], 0)  # from frame t to t + 1; the last as before
        magnitude, step, first, scale = change(magnitude, step, phase[0])
        phases = first + tf.cumsum(step, axis=0, exclusive=True)
        new = tf.complex(magnitude * tf.cos(phases), magnitude * tf.sin(phases))
        out = tf.signal.inverse_stft(
            new, FRAME, HOP, FRAME, window_fn=tf.signal.inverse_stft_window_fn(HOP)
        )
        start = tf.cast(tf.round(pad / scale), tf.int32)
        return _fit(out[start:], length)

    return tf.cond(n >= 2 * FRAME, warped, lambda: _fit(waveform, length))


def stretch_tempo(waveform: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """`waveform` `factor` times as fast (1/factor as long) at the same pitch."""
    factor = tf.cast(factor, tf.float32)
    length = tf.maximum(
        tf.cast(tf.round(tf.cast(tf.shape(waveform)[0], tf.float32) / factor), tf.int32), 1
    )

    def change(magnitude, step, first):
        frames = tf.cast(tf.shape(magnitude)[0], tf.float32)
        at = tf.range(0.0, frames - 1.0, factor)  # source frame of each new frame
        left = tf.cast(tf.floor(at), tf.int32)
        share = (at - tf.floor(at))[:, None]
        mags = (1.0 - share) * tf.gather(magnitude, left) + share * tf.gather(magnitude, left + 1)
        return mags, tf.gather(step, left), first, factor

    return _resynthesise(waveform, length, change)


def shift_pitch(waveform: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """`waveform` at `factor` times the pitch, as long as it was: played at that speed,
    then its tempo brought back."""
    factor = tf.cast(factor, tf.float32)
    shifted = stretch_tempo(play_at(waveform, factor), 1.0 / factor)
    return _fit(shifted, tf.shape(waveform)[0])


def warp_vocal_tract(waveform: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    """`waveform` with its spectrum stretched by `factor` along frequency (formants and
    harmonics of a longer vocal tract for factor < 1, of a shorter one above 1), as long
    as it was."""
    factor = tf.cast(factor, tf.float32)
    last = float(FRAME // 2)

    def change(magnitude, step, first):
        bins = tf.range(FRAME // 2 + 1, dtype=tf.float32)
        source = tf.clip_by_value(vtlp_source(bins, factor, last), 0.0, last)
        left = tf.minimum(tf.cast(tf.floor(source), tf.int32), FRAME // 2 - 1)
        share = source - tf.cast(left, tf.float32)

        def at_source(values):
            return (1.0 - share) * tf.gather(values, left, axis=1) + share * tf.gather(
                values, left + 1, axis=1
            )

        # A component moved from `source` to `bins` turns `bins / source` times as fast.
        ratio = tf.where(source > 0, bins / tf.maximum(source, 1e-6), factor)
        first = tf.gather(first, left)
        return at_source(magnitude), at_source(step) * ratio, first, 1.0

    return _resynthesise(waveform, tf.shape(waveform)[0], change)
