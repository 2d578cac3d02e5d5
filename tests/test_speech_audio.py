"""WAV bytes to waveforms in the graph: a batch with empty, corrupt, truncated and
unsupported elements still decodes the good ones; other sample rates are resampled
(without aliasing when going down); channels are averaged; long input is capped."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import tensorflow as tf

from pipelines.speech.audio import (
    decode_batch,
    pad_edges,
    perturb,
    resample,
    reverberate,
    wav_info,
)
from pipelines.speech.warping import shift_pitch, stretch_tempo, warp_vocal_tract
from pipelines.speech.wavfile import read_wav, to_int16, wav_bytes, write_wav
from tfmodels.speech.features import VTLP_BEND, vtlp_source

RATE = 8000


def tone(hz: float, seconds: float, rate: int = RATE, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * hz * np.arange(int(seconds * rate)) / rate)


def riff(*chunks: tuple[bytes, bytes], form: bytes = b"WAVE") -> bytes:
    """A RIFF file of `(id, payload)` chunks, odd payloads padded as the format says."""
    body = b"".join(
        cid + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2) for cid, data in chunks
    )
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + form + body


def fmt(channels=1, rate=RATE, bits=16, code=1) -> bytes:
    block = channels * bits // 8
    return struct.pack("<HHIIHH", code, channels, rate, rate * block, block, bits)


def extensible_fmt(sub_code: int = 1) -> bytes:
    """WAVE_FORMAT_EXTENSIBLE, mono 16-bit, its real format code opening the GUID."""
    return (
        fmt(code=0xFFFE)
        + struct.pack("<HHIH", 22, 16, 4, sub_code)
        + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    )


def pcm(samples: np.ndarray) -> bytes:
    return to_int16(samples).tobytes()


def decode(items, **kwargs):
    fn = tf.function(
        lambda b: decode_batch(b, RATE, **kwargs),
        input_signature=[tf.TensorSpec([None], tf.string)],
    )
    waveforms, lengths, ok = fn(tf.constant(items, tf.string))
    return waveforms.numpy(), lengths.numpy(), ok.numpy()


def test_bad_elements_do_not_fail_the_batch():
    good = wav_bytes(tone(440, 0.5), RATE)
    items = [
        good,
        b"",
        b"not a wav at all",
        good[:20],
        good[:44],
        b"RIFF\xff\xff\xff\xffWAVE",
        riff((b"fmt ", fmt(bits=8)), (b"data", b"\x80" * 100)),  # 8-bit
        riff((b"fmt ", fmt(code=3, bits=32)), (b"data", b"\0" * 400)),  # float
        riff(
            (b"data", pcm(tone(440, 0.1))),
        ),  # no fmt chunk
        riff((b"fmt ", fmt()), (b"data", pcm(tone(440, 0.1))), form=b"AVI "),
        riff((b"fmt ", fmt(channels=0)), (b"data", pcm(tone(440, 0.1)))),
        riff((b"fmt ", fmt(rate=0)), (b"data", pcm(tone(440, 0.1)))),
        riff((b"fmt ", extensible_fmt(sub_code=3)), (b"data", pcm(tone(440, 0.1)))),
        good,
    ]
    waveforms, lengths, ok = decode(items)
    np.testing.assert_array_equal(ok, [True] + [False] * 12 + [True])
    np.testing.assert_array_equal(lengths, [4000] + [0] * 12 + [4000])
    assert waveforms.shape == (14, 4000)
    assert np.all(waveforms[1:13] == 0)
    np.testing.assert_allclose(waveforms[0], tone(440, 0.5), atol=1e-4)


def test_a_batch_of_only_bad_elements_still_has_one_column():
    waveforms, lengths, ok = decode([b"", b"junk"])
    assert waveforms.shape == (2, 1) and not ok.any() and not lengths.any()


def test_chunks_before_data_and_truncated_data():
    samples = tone(300, 0.25)
    listed = riff(
        (b"fmt ", fmt()),
        (b"LIST", b"INFOISFT\x03\0\0\0ab\0"),
        (b"fact", b"\1\2\3"),
        (b"data", pcm(samples)),
    )
    extensible = riff((b"fmt ", extensible_fmt()), (b"data", pcm(samples)))
    cut = wav_bytes(samples, RATE)[:-101]  # data chunk says more than is there
    waveforms, lengths, ok = decode([listed, extensible, cut])
    assert ok.all()
    np.testing.assert_array_equal(lengths, [2000, 2000, 2000 - 51])
    for row in range(3):
        np.testing.assert_allclose(
            waveforms[row, : lengths[row]], samples[: lengths[row]], atol=1e-4
        )


def test_header_fields():
    info = wav_info(
        tf.constant(
            [
                wav_bytes(tone(440, 0.3, 16000), 16000),
                riff((b"fmt ", fmt(channels=2)), (b"data", b"\0" * 40)),
                b"RIFF",
            ]
        )
    )
    np.testing.assert_array_equal(info["ok"], [True, True, False])
    np.testing.assert_array_equal(info["sample_rate"], [16000, RATE, 0])
    np.testing.assert_array_equal(info["channels"], [1, 2, 0])
    np.testing.assert_array_equal(info["frames"], [4800, 10, 0])
    np.testing.assert_array_equal(info["data_offset"], [44, 44, 0])


def test_channels_are_averaged():
    left, right = tone(440, 0.2), tone(1000, 0.2)
    stereo = riff(
        (b"fmt ", fmt(channels=2)), (b"data", pcm(np.stack([left, right], axis=1).reshape(-1)))
    )
    waveforms, lengths, ok = decode([stereo, wav_bytes(left[:800], RATE)])
    assert ok.all() and list(lengths) == [1600, 800]
    np.testing.assert_allclose(waveforms[0], (left + right) / 2, atol=1e-4)
    np.testing.assert_allclose(waveforms[1, :800], left[:800], atol=1e-4)


def spectrum_peak_ratio(x: np.ndarray, rate: int, hz: float) -> float:
    """Magnitude near `hz` relative to the largest peak of `x`."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return float(spectrum[np.abs(freqs - hz) < 20].max() / spectrum.max())


def test_higher_rates_are_resampled_without_aliasing():
    # 16 kHz: a 440 Hz tone plus a 5 kHz one that an 8 kHz rate cannot hold (it would
    # fold onto 3 kHz if decimated naively).
    mixed = tone(440, 1.0, 16000) + tone(5000, 1.0, 16000, amplitude=0.3)
    waveforms, lengths, ok = decode([wav_bytes(mixed, 16000), wav_bytes(tone(440, 0.5), RATE)])
    assert ok.all() and list(lengths) == [8000, 4000]
    out = waveforms[0]
    np.testing.assert_allclose(out[100:-100], tone(440, 1.0)[100:-100], atol=2e-3)
    assert spectrum_peak_ratio(out, RATE, 3000) < 1e-2


@pytest.mark.parametrize("rate", [4000, 11025, 44100])
def test_other_rates_keep_the_tone_and_duration(rate):
    waveforms, lengths, ok = decode([wav_bytes(tone(300, 1.0, rate), rate)])
    assert ok[0] and lengths[0] == 8000
    np.testing.assert_allclose(waveforms[0, 50:-50], tone(300, 1.0)[50:-50], atol=0.02)


def test_resample_passes_target_rate_rows_unchanged():
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 100)), tf.float32)
    out, lengths = resample(x, [100, 60], [RATE, RATE], RATE)
    np.testing.assert_array_equal(lengths, [100, 60])
    np.testing.assert_array_equal(out[0], x[0])
    np.testing.assert_array_equal(out[1, 60:], 0)


def test_sixty_seconds_decode_and_longer_input_is_capped():
    minute = wav_bytes(0.1 * np.sin(np.arange(60 * RATE) / 7.0), RATE)
    long_16k = wav_bytes(0.1 * np.sin(np.arange(75 * 16000) / 9.0), 16000)
    waveforms, lengths, ok = decode([minute, long_16k, b""], max_seconds=60.0)
    assert ok[:2].all() and not ok[2]
    np.testing.assert_array_equal(lengths, [60 * RATE, 60 * RATE, 0])
    assert waveforms.shape == (3, 60 * RATE) and waveforms.dtype == np.float32
    _, short, _ = decode([minute], max_seconds=2.5)
    assert short[0] == 20000


def test_wav_files_round_trip(tmp_path):
    samples = tone(440, 0.3)
    write_wav(tmp_path / "a.wav", samples, RATE)
    back, rate = read_wav(tmp_path / "a.wav")
    assert rate == RATE
    np.testing.assert_allclose(back, samples, atol=1e-4)
    waveforms, lengths, ok = decode([(tmp_path / "a.wav").read_bytes()])
    np.testing.assert_allclose(waveforms[0], back, atol=1e-6)


def test_pad_edges_places_each_waveform_between_fixed_low_noise():
    waveforms = tf.constant([[0.5, 0.5, 0.5, 0.0], [0.3, 0.3, 0.3, 0.3]])
    lengths = tf.constant([3, 4])
    padded, new_lengths = pad_edges(waveforms, lengths, 5, 0.001)
    padded = padded.numpy()
    assert new_lengths.numpy().tolist() == [13, 14] and padded.shape == (2, 14)
    np.testing.assert_array_equal(padded[0, 5:8], waveforms.numpy()[0, :3])
    np.testing.assert_array_equal(padded[1, 5:9], waveforms.numpy()[1])
    for row, n, speech in ((padded[0], 3, slice(5, 8)), (padded[1], 4, slice(5, 9))):
        edges = np.concatenate([row[:5], row[speech.stop : speech.stop + 5]])
        assert np.all(edges != 0) and np.abs(edges).max() < 0.01  # low noise, not silence
        assert np.all(row[n + 10 :] == 0)  # beyond the new length
    again, _ = pad_edges(waveforms, lengths, 5, 0.001)
    np.testing.assert_array_equal(padded, again.numpy())  # the same input, the same output
    same, same_lengths = pad_edges(waveforms, lengths, 0, 0.001)
    assert same is waveforms and same_lengths is lengths


def _tone(hz: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _peak_hz(waveform: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(waveform))
    return float(np.fft.rfftfreq(len(waveform), 1 / RATE)[spectrum.argmax()])


def test_perturb_changes_speed_gain_and_noise_as_drawn_and_nothing_when_off():
    tone = _tone(500.0)
    assert perturb(tf.constant(tone)).numpy().tolist() == tone.tolist()  # all off
    lengths, peaks = [], []
    for draw in range(20):
        faster = perturb(tf.constant(tone), speed=0.1, seed=[draw, 0]).numpy()
        lengths.append(len(faster))
        peaks.append(_peak_hz(faster))
        # Played at factor f: 1/f as long, f times the pitch.
        assert _peak_hz(faster) * len(faster) == pytest.approx(500.0 * len(tone), rel=0.02)
    assert min(lengths) >= RATE / 1.1 - 1 and max(lengths) <= RATE / 0.9 + 1
    assert max(lengths) - min(lengths) > RATE * 0.05  # different seeds, different speeds
    again = perturb(tf.constant(tone), speed=0.1, seed=[3, 0]).numpy()
    assert len(again) == lengths[3]  # the same seed, the same draw
    gains = [
        np.sqrt(np.mean(perturb(tf.constant(tone), gain_db=6.0, seed=[d, 0]).numpy() ** 2))
        / np.sqrt(np.mean(tone**2))
        for d in range(20)
    ]
    assert 10 ** (-6 / 20) - 1e-3 <= min(gains) and max(gains) <= 10 ** (6 / 20) + 1e-3
    assert max(gains) / min(gains) > 1.3
    noisy = perturb(tf.constant(tone), noise_snr_db=10.0, seed=[1, 0]).numpy()
    snr = 10 * np.log10(np.mean(tone**2) / np.mean((noisy - tone) ** 2))
    assert 9.0 <= snr <= 31.0


def test_reverberation_decays_60_db_in_its_time_and_keeps_length_and_level():
    click = np.zeros(RATE, np.float32)
    click[100] = 1.0
    wet = reverberate(tf.constant(click), 0.4, RATE, tf.constant([1, 2])).numpy()
    assert len(wet) == RATE
    assert np.sqrt(np.mean(wet**2)) == pytest.approx(np.sqrt(np.mean(click**2)), rel=1e-3)
    assert np.allclose(wet[:100], 0.0, atol=1e-5)  # nothing before the sound
    assert np.argmax(np.abs(wet)) == 100  # the direct sound first and loudest

    def energy(start_s: float) -> float:  # of the tail 50 ms from `start_s` after the click
        at = 100 + int(start_s * RATE)
        return float(np.mean(wet[at : at + RATE // 20] ** 2))

    assert 10 * np.log10(energy(0.01) / energy(0.21)) == pytest.approx(30.0, abs=6.0)
    again = reverberate(tf.constant(click), 0.4, RATE, tf.constant([1, 2])).numpy()
    np.testing.assert_array_equal(wet, again)
    tone = _tone(500.0)
    rooms = [perturb(tf.constant(tone), reverb_rt60=0.5, seed=[d, 0]).numpy() for d in range(6)]
    assert all(len(r) == len(tone) for r in rooms)
    assert len({round(float(np.abs(r - tone).mean()), 5) for r in rooms}) > 3  # rooms differ


def _peaks_hz(waveform: np.ndarray, count: int) -> list[float]:
    spectrum = np.abs(np.fft.rfft(waveform))
    return sorted(
        float(f) for f in np.fft.rfftfreq(len(waveform), 1 / RATE)[np.argsort(spectrum)[-count:]]
    )


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_tempo_pitch_and_vocal_tract_warps_move_only_what_they_say(factor):
    """Tempo: 1/factor as long at the same pitch; pitch: factor times the frequency at the
    same length; VTLP: every frequency below the bend times factor, the same length."""
    tone = tf.constant(_tone(500.0))
    faster = stretch_tempo(tone, factor).numpy()
    assert len(faster) == round(RATE / factor)
    assert _peak_hz(faster) == pytest.approx(500.0, abs=2.0)
    higher = shift_pitch(tone, factor).numpy()
    assert len(higher) == RATE
    assert _peak_hz(higher) == pytest.approx(500.0 * factor, abs=2.0)
    chord = tf.constant(0.6 * _tone(700.0) + 0.4 * _tone(1500.0))
    warped = warp_vocal_tract(chord, factor).numpy()
    assert len(warped) == RATE
    assert _peaks_hz(warped, 2) == pytest.approx([700.0 * factor, 1500.0 * factor], abs=3.0)
    # Each keeps most of the level (phase-vocoder resynthesis, no gain).
    for out, source in ((faster, tone), (higher, tone), (warped, chord)):
        ratio = np.sqrt(np.mean(out[600:-600] ** 2) / np.mean(source.numpy() ** 2))
        assert 0.7 <= ratio <= 1.1


def test_warps_by_one_give_the_input_back_and_vtlp_keeps_the_band_edge():
    tone = _tone(500.0)
    for warp in (stretch_tempo, shift_pitch, warp_vocal_tract):
        assert np.abs(warp(tf.constant(tone), 1.0).numpy() - tone).max() < 0.01
    short = tf.constant(tone[:300])  # under two frames: as it is
    assert np.array_equal(warp_vocal_tract(short, 1.1).numpy(), tone[:300])
    assert stretch_tempo(tf.constant(tone[:0]), 1.1).numpy().tolist() == [0.0]
    bins = tf.range(129, dtype=tf.float32)
    for factor in (0.9, 1.1):
        source = vtlp_source(bins, tf.constant(factor), 128.0).numpy()
        assert source[-1] == pytest.approx(128.0) and source[0] == 0.0
        assert np.all(np.diff(source) > 0)  # one source per output, in order
        below = bins.numpy() <= VTLP_BEND * 128 * min(factor, 1.0)
        assert source[below] == pytest.approx(bins.numpy()[below] / factor)


def test_perturb_draws_tempo_pitch_and_vtlp_within_their_ranges():
    tone = tf.constant(_tone(500.0))
    lengths = [len(perturb(tone, tempo=0.1, seed=[d, 0]).numpy()) for d in range(12)]
    assert min(lengths) >= RATE / 1.1 - 1 and max(lengths) <= RATE / 0.9 + 1
    assert max(lengths) - min(lengths) > RATE * 0.05
    for kind in ("pitch", "vtlp"):
        outs = [perturb(tone, seed=[d, 0], **{kind: 0.1}).numpy() for d in range(12)]
        peaks = [_peak_hz(out) for out in outs]
        assert {len(out) for out in outs} == {RATE}
        assert 450.0 - 2 <= min(peaks) and max(peaks) <= 550.0 + 2 and max(peaks) - min(peaks) > 20
        again = perturb(tone, seed=[5, 0], **{kind: 0.1}).numpy()
        assert np.array_equal(again, outs[5])  # the same seed, the same draw
    # The kinds added later leave the earlier kinds' draws as they were.
    both = perturb(tone, speed=0.1, vtlp=0.1, seed=[3, 0]).numpy()
    assert len(both) == len(perturb(tone, speed=0.1, seed=[3, 0]).numpy())


def test_only_the_training_set_is_perturbed(tmp_path):
    """`model.speed` (and gain, noise) change training waveforms, never validation ones."""
    from helpers import DATA

    from pipelines.core.runner import load_task_config
    from pipelines.speech.task import SpeechTask

    def lengths(speed: float) -> tuple[list[int], list[int]]:
        config = load_task_config("speech", None, [f"model.speed={speed}", "train.seed=1"])
        task = SpeechTask(config, DATA)
        task.prepare(tmp_path)
        train, val = task.datasets(4)
        count = [sorted(int(n) for x, _ in ds for n in x["lengths"]) for ds in (train, val)]
        return count[0], count[1]

    (train, val), (train_fast, val_fast) = lengths(0.0), lengths(0.2)
    assert val_fast == val
    assert train_fast != train and len(train_fast) == len(train)


@pytest.mark.parametrize(
    "setting,named",
    [
        ("model.speed=0.7", "model.speed"),
        ("model.gain_db=-3", "model.gain_db"),
        ("model.vtlp=0.6", "model.vtlp"),
        ("model.tempo=-0.1", "model.tempo"),
    ],
)
def test_bad_perturbation_settings_fail_before_any_data_is_read(tmp_path, setting, named):
    from pipelines.core.config import ConfigError
    from pipelines.core.runner import load_task_config, run_pipeline

    config = load_task_config("speech", None, [setting])
    with pytest.raises(ConfigError, match=named):
        run_pipeline("speech", config, data_dir=tmp_path, workdir=tmp_path / "w")  # no data
