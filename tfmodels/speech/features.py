"""Log-mel features of padded waveforms, as a Keras layer so the exported graph takes audio.

Built on `tf.signal` rather than `keras.layers.MelSpectrogram`: that layer has no notion of
each waveform's length, so padding would leak into the last frames and into any
normalisation. Here the samples beyond each length are zeroed first, so a waveform gives the
same features alone as in any batch, and the per-utterance normalisation reads valid frames
only.

Vocal-tract-length perturbation (Jaitly and Hinton 2013) lives here too, as they did it: in
training only, each utterance's power spectrum is warped along frequency by its own factor
before the mel filters. That costs one gather per batch, where a waveform resynthesis costs
an STFT and its inverse per utterance in the input pipeline.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

VTLP_BEND = 0.8  # share of the Nyquist frequency below which VTLP scales frequencies


def vtlp_source(bins: tf.Tensor, factor: tf.Tensor, nyquist: float) -> tf.Tensor:
    """Where each output frequency of VTLP by `factor` comes from (the inverse warp): below
    the bend `f / factor`, above it a line to the Nyquist frequency, which stays put.
    `factor` may be a scalar or `[B, 1]` against `bins` `[K]` (then `[B, K]`)."""
    bend = VTLP_BEND * nyquist * tf.minimum(factor, 1.0) / factor  # source frequency
    top = bend * factor  # where the bend lands
    above = nyquist - (nyquist - bins) * (nyquist - bend) / (nyquist - top)
    return tf.where(bins <= top, bins / factor, above)


def warp_spectrum(power: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """`power` `[B, F, K]` (K bins from 0 to the Nyquist frequency) with each row's
    frequency axis warped by its factor `[B]` (`vtlp_source`), by linear interpolation."""
    last = tf.cast(tf.shape(power)[2] - 1, tf.float32)
    bins = tf.range(last + 1.0)
    source = tf.clip_by_value(vtlp_source(bins, factors[:, None], last), 0.0, last)
    left = tf.minimum(tf.cast(tf.floor(source), tf.int32), tf.cast(last, tf.int32) - 1)
    share = (source - tf.cast(left, tf.float32))[:, None, :]
    below = tf.gather(power, left, axis=2, batch_dims=1)
    above = tf.gather(power, left + 1, axis=2, batch_dims=1)
    return (1.0 - share) * below + share * above


@keras.saving.register_keras_serializable(package="tfmodels")
class LogMelSpectrogram(keras.layers.Layer):
    """Float waveforms `[B, T]` and their lengths `[B]` (samples) -> log-mel features
    `[B, F, n_mels]` float32 and frame lengths `[B]` int32.

    Frames are `frame_ms` long every `step_ms` (the last ones zero-padded), so a waveform
    of `n` samples has `ceil(n / step)` frames; `F` is that of the batch's width. With
    `normalize`, each utterance's features are shifted and scaled to zero mean and unit
    variance per mel bin over its valid frames (speaker and channel level removed), and
    frames beyond each length are 0. With `vtlp` > 0 and `training=True`, each utterance's
    spectrum is warped along frequency by a factor uniform in `[1 - vtlp, 1 + vtlp]`
    (`warp_spectrum`) before the mel filters; serving is never warped. With `cepstra` > 0,
    each frame's log-mel energies are smoothed along frequency: only their first `cepstra`
    cepstral coefficients (DCT-II) are kept and turned back into mel bins, so the spectral
    envelope (formants) stays and the harmonics of the speaker's pitch go.
    """

    def __init__(
        self,
        sample_rate: int = 8000,
        frame_ms: float = 25.0,
        step_ms: float = 10.0,
        n_mels: int = 40,
        fft_length: int | None = None,
        min_hz: float = 20.0,
        max_hz: float | None = None,
        normalize: bool = True,
        floor: float = 1e-6,
        vtlp: float = 0.0,
        seed: int | None = None,
        cepstra: int = 0,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")  # stays float32 under mixed precision
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.sample_rate = int(sample_rate)
        self.frame_ms = float(frame_ms)
        self.step_ms = float(step_ms)
        self.n_mels = int(n_mels)
        self.frame_length = int(round(sample_rate * frame_ms / 1000))
        self.frame_step = int(round(sample_rate * step_ms / 1000))
        self.fft_length = int(fft_length or 2 ** math.ceil(math.log2(self.frame_length)))
        self.min_hz = float(min_hz)
        self.max_hz = float(max_hz or sample_rate / 2)
        self.normalize = bool(normalize)
        self.floor = float(floor)
        self.vtlp = float(vtlp)
        self.seed = seed
        self.cepstra = int(cepstra)
        if not 0 <= self.cepstra <= self.n_mels:
            raise ValueError(f"LogMelSpectrogram: cepstra {cepstra} must lie in [0, n_mels]")
        if not 0.0 <= self.vtlp < 1.0:
            raise ValueError(f"LogMelSpectrogram: vtlp {vtlp} must lie in [0, 1)")
        # Only when warping: a layer without it keeps the weights of earlier models.
        self.seed_generator = keras.random.SeedGenerator(seed) if self.vtlp else None
        if self.frame_step < 1 or self.fft_length < self.frame_length:
            raise ValueError(
                f"LogMelSpectrogram: frame {self.frame_length}, step "
                f"{self.frame_step}, fft {self.fft_length} samples do not fit"
            )
        self.built = True

    def frame_lengths(self, lengths: tf.Tensor) -> tf.Tensor:
        """Frames of waveforms of `lengths` samples: `ceil(n / step)`, int32."""
        lengths = tf.cast(lengths, tf.int32)
        return (lengths + self.frame_step - 1) // self.frame_step

    def call(self, waveform, lengths, training=None):
        waveform = tf.cast(waveform, tf.float32)
        lengths = tf.cast(lengths, tf.int32)
        waveform *= tf.sequence_mask(lengths, tf.shape(waveform)[1], tf.float32)
        stft = tf.signal.stft(
            waveform, self.frame_length, self.frame_step, self.fft_length, pad_end=True
        )
        mel = tf.signal.linear_to_mel_weight_matrix(
            self.n_mels, self.fft_length // 2 + 1, self.sample_rate, self.min_hz, self.max_hz
        )
        power = tf.abs(stft) ** 2
        if training and self.vtlp:
            factors = keras.random.uniform(
                tf.shape(power)[:1], 1.0 - self.vtlp, 1.0 + self.vtlp, seed=self.seed_generator
            )
            power = warp_spectrum(power, factors)
        features = tf.math.log(tf.matmul(power, mel) + self.floor)
        if self.cepstra and self.cepstra < self.n_mels:
            keep = tf.constant([1.0] * self.cepstra + [0.0] * (self.n_mels - self.cepstra))
            cepstrum = tf.signal.dct(features, type=2, norm="ortho") * keep
            features = tf.signal.idct(cepstrum, type=2, norm="ortho")
        frames = self.frame_lengths(lengths)
        mask = tf.sequence_mask(frames, tf.shape(features)[1], tf.float32)[:, :, None]
        if self.normalize:
            count = tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)
            mean = tf.reduce_sum(features * mask, axis=1, keepdims=True) / count
            centred = (features - mean) * mask
            var = tf.reduce_sum(centred**2, axis=1, keepdims=True) / count
            features = centred * tf.math.rsqrt(var + 1e-5)
        return features * mask, frames

    def compute_output_spec(self, waveform, lengths, training=None):
        batch = waveform.shape[0]
        return (
            keras.KerasTensor((batch, None, self.n_mels), "float32"),
            keras.KerasTensor((batch,), "int32"),
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "sample_rate": self.sample_rate,
            "frame_ms": self.frame_ms,
            "step_ms": self.step_ms,
            "n_mels": self.n_mels,
            "fft_length": self.fft_length,
            "min_hz": self.min_hz,
            "max_hz": self.max_hz,
            "normalize": self.normalize,
            "floor": self.floor,
            "vtlp": self.vtlp,
            "seed": self.seed,
            "cepstra": self.cepstra,
        }
