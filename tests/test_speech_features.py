"""Log-mel features: shapes, frame lengths, padding masked, per-utterance normalisation over
valid frames only, the same features alone as in a batch; SpecAugment masks in training
only, inside each utterance, repeatably with a seed; VTLP in the filterbank moves a tone by
each utterance's own factor in training only."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfmodels.speech import LogMelSpectrogram, SpecAugment
from tfmodels.speech.features import warp_spectrum


def waveforms(lengths, width=None, seed=0):
    rng = np.random.default_rng(seed)
    width = width or max(lengths)
    out = np.zeros((len(lengths), width), np.float32)
    for i, n in enumerate(lengths):
        t = np.arange(n) / 8000
        out[i, :n] = 0.3 * np.sin(2 * np.pi * (300 + 200 * i) * t) + 0.05 * rng.normal(size=n)
    return out


def test_shapes_and_frame_lengths():
    layer = LogMelSpectrogram(sample_rate=8000, frame_ms=25, step_ms=10, n_mels=32)
    lengths = np.array([8000, 4001, 80, 0])
    features, frames = layer(waveforms(lengths), lengths)
    assert features.shape == (4, 100, 32) and features.dtype == tf.float32
    assert frames.dtype == tf.int32
    np.testing.assert_array_equal(frames, [100, 51, 1, 0])  # ceil(n / 80)


def test_padding_is_zero_and_normalised_over_valid_frames():
    layer = LogMelSpectrogram(8000, n_mels=24)
    lengths = np.array([8000, 3000])
    # Garbage beyond the second length must not reach its features.
    wave = waveforms(lengths)
    wave[1, 3000:] = 0.9
    features, frames = (t.numpy() for t in layer(wave, lengths))
    n = frames[1]
    assert np.all(features[1, n:] == 0)
    np.testing.assert_allclose(features[1, :n].mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(features[1, :n].std(axis=0), 1, atol=1e-2)


def test_an_utterance_alone_gives_the_features_it_gets_in_a_batch():
    layer = LogMelSpectrogram(8000, n_mels=40)
    lengths = np.array([8000, 2345])
    batch, frames = layer(waveforms(lengths), lengths)
    alone, alone_frames = layer(waveforms(lengths)[1:, :2345], lengths[1:])
    assert int(alone_frames[0]) == int(frames[1])
    np.testing.assert_allclose(alone[0], batch[1, : frames[1]], atol=1e-4)


def test_without_normalisation_the_log_mel_energies_are_returned():
    layer = LogMelSpectrogram(8000, n_mels=16, normalize=False)
    quiet, _ = layer(0.01 * waveforms([4000]), np.array([4000]))
    loud, _ = layer(waveforms([4000]), np.array([4000]))
    # A hundred times the amplitude: log power up by log(10^4) above the floor.
    assert float(np.median(loud - quiet)) == pytest.approx(np.log(1e4), abs=0.2)


@pytest.mark.parametrize("setting", ["true", "false"])
def test_model_utterance_norm_sets_the_feature_normalisation_of_the_graph(setting):
    """`model.utterance_norm` (default on) is the features layer's normalisation, inside
    the model, so serving normalises as training did."""
    from helpers import DATA

    from pipelines.core.runner import load_task_config
    from pipelines.speech.task import SpeechTask

    assert load_task_config("speech", None, []).model.utterance_norm is True
    task = SpeechTask(load_task_config("speech", None, [f"model.utterance_norm={setting}"]), DATA)
    task.tokens, task.lexicon = list("abc "), []
    task._set_components()
    layer = task.build_model().get_layer("log_mel")
    assert layer.normalize is (setting == "true")
    audio, lengths = waveforms([4000]), np.array([4000])
    reference = LogMelSpectrogram(8000, n_mels=40, normalize=setting == "true")(audio, lengths)
    np.testing.assert_allclose(layer(audio, lengths)[0], reference[0], atol=1e-6)


def test_warp_spectrum_moves_each_rows_peak_by_its_own_factor_and_keeps_the_edges():
    bins = 129
    power = np.zeros((3, 2, bins), np.float32)
    power[:, :, 40] = 1.0  # one tone at bin 40 (below the bend at 0.8 of Nyquist)
    power[:, :, bins - 1] = 2.0  # the Nyquist bin stays where it is
    warped = warp_spectrum(tf.constant(power), tf.constant([1.0, 1.1, 0.9])).numpy()
    np.testing.assert_allclose(warped[0], power[0], atol=1e-6)
    # A formant of a shorter vocal tract (factor 1.1) lies higher, of a longer one lower.
    assert abs(np.argmax(warped[1, 0, :100]) - 44) <= 1
    assert abs(np.argmax(warped[2, 0, :100]) - 36) <= 1
    np.testing.assert_allclose(warped[:, :, bins - 1], 2.0, atol=1e-5)


def test_vtlp_warps_features_in_training_only_with_a_draw_per_utterance():
    layer = LogMelSpectrogram(8000, n_mels=32, normalize=False, vtlp=0.2, seed=3)
    t = np.arange(8000) / 8000
    tone = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    wave, lengths = np.stack([tone] * 4), np.array([8000] * 4)
    plain = LogMelSpectrogram(8000, n_mels=32, normalize=False)(wave, lengths)[0].numpy()
    served = layer(wave, lengths)[0].numpy()
    np.testing.assert_allclose(served, plain, atol=1e-5)  # no warp outside training
    trained = layer(wave, lengths, training=True)[0].numpy()
    peaks = np.argmax(trained.mean(axis=1), axis=1)  # the tone's mel bin, per utterance
    assert len(set(peaks.tolist())) > 1  # each utterance drew its own factor
    assert np.abs(peaks - np.argmax(plain[0].mean(axis=0))).max() <= 4
    again = layer(wave, lengths, training=True)[0].numpy()
    assert not np.allclose(again, trained)  # new draws every call


def test_cepstral_smoothing_keeps_the_envelope_and_drops_the_harmonics():
    """A 100-Hz buzz through one broad resonance: 64 mel bins resolve its low harmonics as
    ripples; the first 12 cepstra keep the resonance's hump and lose the ripples."""
    t = np.arange(8000) / 8000
    resonance = lambda f: np.exp(-(((f - 1200.0) / 500.0) ** 2))  # noqa: E731
    buzz = sum(resonance(f) * np.sin(2 * np.pi * f * t) for f in range(100, 4000, 100))
    wave, lengths = (0.05 * buzz[None, :]).astype(np.float32), np.array([8000])
    plain = LogMelSpectrogram(8000, n_mels=64, normalize=False)(wave, lengths)[0].numpy()
    layer = LogMelSpectrogram(8000, n_mels=64, normalize=False, cepstra=12)
    smooth = layer(wave, lengths)[0].numpy()
    plain, smooth = plain[0, 5:-5].mean(axis=0), smooth[0, 5:-5].mean(axis=0)

    def ripple(x):  # what is left after a 5-bin moving average, in the harmonics' range
        return np.abs(x - np.convolve(x, np.ones(5) / 5, "same"))[4:30].mean()

    assert ripple(smooth) < 0.3 * ripple(plain)
    assert abs(int(np.argmax(smooth)) - int(np.argmax(plain))) <= 4  # the hump stays
    with pytest.raises(ValueError, match="cepstra"):
        LogMelSpectrogram(8000, n_mels=40, cepstra=41)
    assert LogMelSpectrogram.from_config(layer.get_config()).cepstra == 12


def test_config_round_trip():
    layer = LogMelSpectrogram(16000, frame_ms=20, step_ms=10, n_mels=64, max_hz=7000)
    clone = LogMelSpectrogram.from_config(layer.get_config())
    assert (clone.frame_length, clone.frame_step, clone.fft_length, clone.max_hz) == (
        320,
        160,
        512,
        7000.0,
    )


def features_and_lengths():
    features = tf.ones([4, 120, 40])
    lengths = tf.constant([120, 90, 30, 5])
    return features * tf.sequence_mask(lengths, 120, tf.float32)[:, :, None], lengths


def test_spec_augment_is_identity_outside_training():
    layer = SpecAugment(freq_masks=2, freq_width=10, time_masks=2, time_width=20, seed=1)
    features, lengths = features_and_lengths()
    for training in (False, None):
        np.testing.assert_array_equal(layer(features, lengths, training=training), features)


def test_spec_augment_masks_bands_and_runs_inside_each_utterance():
    layer = SpecAugment(
        freq_masks=2, freq_width=10, time_masks=2, time_width=20, max_time_fraction=0.2, seed=3
    )
    features, lengths = features_and_lengths()
    masked = layer(features, lengths, training=True).numpy()
    assert masked.shape == features.shape
    zeroed = (masked == 0) & (features.numpy() == 1)
    assert zeroed.any()
    for row, n in enumerate(lengths.numpy()):
        valid = zeroed[row, :n]
        bins = valid.all(axis=0)  # frequency masks span every frame
        assert bins.sum() <= 20
        frames = valid.all(axis=1)  # time masks span every bin
        assert frames.sum() <= 2 * min(20, int(0.2 * n))
        # Nothing else is touched.
        assert np.array_equal(valid, bins[None, :] | frames[:, None])
    # Some row got a frequency band and some a time run.
    assert zeroed.all(axis=1).any() and zeroed[0].all(axis=0).any()


def test_spec_augment_with_a_seed_repeats_and_draws_anew_per_call():
    features, lengths = features_and_lengths()
    first = SpecAugment(seed=7)
    second = SpecAugment(seed=7)
    a = first(features, lengths, training=True)
    np.testing.assert_array_equal(a, second(features, lengths, training=True))
    assert not np.array_equal(a, first(features, lengths, training=True))
