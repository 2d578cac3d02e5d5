"""Log-mel features of padded waveforms, as a Keras layer so the exported graph takes audio.

Built on `tf.signal` rather than `keras.layers.MelSpectrogram`: that layer has no notion of
each waveform's length, so padding would leak into the last frames and into any
normalisation. Here the samples beyond each length are zeroed first, so a waveform gives the
same features alone as in any batch, and the per-utterance normalisation reads valid frames
only.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfmodels")
class LogMelSpectrogram(keras.layers.Layer):
    """Float waveforms `[B, T]` and their lengths `[B]` (samples) -> log-mel features
    `[B, F, n_mels]` float32 and frame lengths `[B]` int32.

    Frames are `frame_ms` long every `step_ms` (the last ones zero-padded), so a waveform
    of `n` samples has `ceil(n / step)` frames; `F` is that of the batch's width. With
    `normalize`, each utterance's features are shifted and scaled to zero mean and unit
    variance per mel bin over its valid frames (speaker and channel level removed), and
    frames beyond each length are 0.
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

    def call(self, waveform, lengths):
        waveform = tf.cast(waveform, tf.float32)
        lengths = tf.cast(lengths, tf.int32)
        waveform *= tf.sequence_mask(lengths, tf.shape(waveform)[1], tf.float32)
        stft = tf.signal.stft(
            waveform, self.frame_length, self.frame_step, self.fft_length, pad_end=True
        )
        mel = tf.signal.linear_to_mel_weight_matrix(
            self.n_mels, self.fft_length // 2 + 1, self.sample_rate, self.min_hz, self.max_hz
        )
        features = tf.math.log(tf.matmul(tf.abs(stft) ** 2, mel) + self.floor)
        frames = self.frame_lengths(lengths)
        mask = tf.sequence_mask(frames, tf.shape(features)[1], tf.float32)[:, :, None]
        if self.normalize:
            count = tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)
            mean = tf.reduce_sum(features * mask, axis=1, keepdims=True) / count
            centred = (features - mean) * mask
            var = tf.reduce_sum(centred**2, axis=1, keepdims=True) / count
            features = centred * tf.math.rsqrt(var + 1e-5)
        return features * mask, frames

    def compute_output_spec(self, waveform, lengths):
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
        }
