"""WAV bytes to model-rate mono waveforms in the graph, for training input and for serving.

`tf.audio.decode_wav` fails the whole batch on one bad element, and a graph cannot catch
the error, so a serving call with one truncated upload would fail for every caller in the
batch. Here string ops read each element's RIFF chunks first (the chunk walk that
`decode_wav` does), and the samples of the elements found valid are one `tf.io.decode_raw`;
an element that is not a readable 16-bit PCM WAV gives length 0 and `ok=False`.

Other sample rates are resampled in the graph: FFT low-pass below the target's Nyquist
(where the source rate is higher), then linear interpolation. Several channels are
averaged to mono. Input longer than `max_seconds` is cut there before anything is
allocated for it.
"""

from __future__ import annotations

import math

import tensorflow as tf

from pipelines.speech.warping import play_at, shift_pitch, stretch_tempo, warp_vocal_tract

MAX_CHUNKS = 16  # RIFF chunks looked at before "data" (fmt, LIST, fact, JUNK...)
PCM, EXTENSIBLE = 1, 0xFFFE
MAX_CHANNELS = 16
MAX_RATE = 384_000


def _text_at(wav: tf.Tensor, pos: tf.Tensor, count: int) -> tf.Tensor:
    """`[N]` strings of up to `count` bytes of each element from `pos` (shorter at its end)."""
    size = tf.cast(tf.strings.length(wav), tf.int64)
    pos = tf.clip_by_value(tf.cast(pos, tf.int64), 0, size)
    return tf.strings.substr(wav, tf.cast(pos, tf.int32), tf.fill(tf.shape(pos), count))


def _bytes_at(wav: tf.Tensor, pos: tf.Tensor, count: int) -> tf.Tensor:
    """`[N, count]` int64 bytes of each element from `pos` (0 past its end)."""
    return tf.cast(
        tf.io.decode_raw(_text_at(wav, pos, count), tf.uint8, fixed_length=count), tf.int64
    )


def _uint(byte_values: tf.Tensor) -> tf.Tensor:
    """Little-endian unsigned integers from `[N, k]` bytes -> `[N]` int64."""
    shifts = tf.constant([8 * i for i in range(byte_values.shape[-1])], tf.int64)
    return tf.reduce_sum(tf.bitwise.left_shift(byte_values, shifts), axis=-1)


def wav_info(wav: tf.Tensor) -> dict[str, tf.Tensor]:
    """What the RIFF chunks of each WAV `[N]` say, without decoding samples.

    Returns `[N]` tensors: `ok` (bool: a 16-bit PCM WAV with at least one whole frame),
    `sample_rate`, `channels`, `frames` (int64: whole frames present, a data chunk cut
    short counts what is there), `data_offset` (int64). Fields of elements not ok are 0.
    """
    wav = tf.reshape(wav, [-1])
    n = tf.shape(wav)[0]
    size = tf.cast(tf.strings.length(wav), tf.int64)
    riff = _text_at(wav, tf.zeros_like(size), 4) == b"RIFF"
    wave = _text_at(wav, tf.fill(tf.shape(size), tf.constant(8, tf.int64)), 4) == b"WAVE"
    zeros = tf.zeros_like(size)
    false = tf.zeros_like(size, tf.bool)

    def chunk(i, pos, fmt, has_fmt, data_pos, data_size, has_data):
        header = pos + 8 <= size
        tag = _text_at(wav, pos, 4)
        length = _uint(_bytes_at(wav, pos + 4, 4))
        is_fmt = header & (tag == b"fmt ") & ~has_fmt & (length >= 16) & (pos + 8 + 16 <= size)
        is_data = header & (tag == b"data") & ~has_data & has_fmt
        fields = _bytes_at(wav, pos + 8, 26)  # fmt: the 16 fields + the extensible part
        fmt = tf.where(is_fmt[:, None], tf.concat([fields, length[:, None]], 1), fmt)
        data_pos = tf.where(is_data, pos + 8, data_pos)
        data_size = tf.where(is_data, tf.minimum(length, tf.maximum(size - pos - 8, 0)), data_size)
        pos = tf.where(header, pos + 8 + length + length % 2, size)  # chunks are word-aligned
        return i + 1, pos, fmt, has_fmt | is_fmt, data_pos, data_size, has_data | is_data

    _, _, fmt, has_fmt, data_pos, data_size, has_data = tf.while_loop(
        lambda i, pos, *rest: (i < MAX_CHUNKS) & tf.reduce_any(pos + 8 <= size),
        chunk,
        (0, zeros + 12, tf.zeros([n, 27], tf.int64), false, zeros, zeros, false),
    )
    code = _uint(fmt[:, 0:2])
    channels = _uint(fmt[:, 2:4])
    rate = _uint(fmt[:, 4:8])
    block = _uint(fmt[:, 12:14])
    bits = _uint(fmt[:, 14:16])
    fmt_length = fmt[:, 26]
    # WAVE_FORMAT_EXTENSIBLE: the real format code opens the sub-format GUID at byte 24.
    sub_code = _uint(fmt[:, 24:26])
    pcm = (code == PCM) | ((code == EXTENSIBLE) & (fmt_length >= 40) & (sub_code == PCM))
    frames = tf.where(block > 0, data_size // tf.maximum(block, 1), 0)
    ok = (
        riff
        & wave
        & has_fmt
        & has_data
        & pcm
        & (bits == 16)
        & (channels >= 1)
        & (channels <= MAX_CHANNELS)
        & (block == 2 * channels)
        & (rate >= 1)
        & (rate <= MAX_RATE)
        & (frames > 0)
    )
    fields = {"sample_rate": rate, "channels": channels, "frames": frames, "data_offset": data_pos}
    return {"ok": ok, **{k: tf.where(ok, v, tf.zeros_like(v)) for k, v in fields.items()}}


def _mono(samples: tf.Tensor, frames: tf.Tensor, channels: tf.Tensor) -> tf.Tensor:
    """Interleaved samples `[N, S]` -> `[N, max(frames)]`, the channels averaged."""
    width = tf.reduce_max(tf.concat([frames, [1]], 0))

    def mix():
        ch = tf.maximum(channels, 1)[:, None, None]
        c = tf.range(tf.reduce_max(channels), dtype=tf.int64)[None, None, :]
        t = tf.range(width, dtype=tf.int64)[None, :, None]
        index = tf.minimum(
            t * ch + tf.minimum(c, ch - 1), tf.cast(tf.shape(samples)[1] - 1, tf.int64)
        )
        weight = tf.cast(c < ch, tf.float32) / tf.cast(ch, tf.float32)
        return tf.reduce_sum(tf.gather(samples, index, batch_dims=1) * weight, axis=-1)

    return tf.cond(
        tf.reduce_max(tf.concat([channels, [1]], 0)) > 1, mix, lambda: samples[:, :width]
    )


def _low_pass(x: tf.Tensor, rates: tf.Tensor, cutoff_hz: float) -> tf.Tensor:
    """Rows of `x` `[N, T]` sampled at `rates` `[N]` with their content above `cutoff_hz`
    removed (FFT, a raised-cosine roll-off over the top 15% below the cutoff); rows
    sampled at twice the cutoff or less pass unchanged."""
    width = tf.shape(x)[1]
    # Zero margin after the signal, so the circular filter does not wrap the end onto the start.
    fft_length = tf.cast(
        2.0 ** tf.math.ceil(tf.math.log(tf.cast(width + 2048, tf.float32)) / math.log(2.0)),
        tf.int32,
    )
    spectrum = tf.signal.rfft(x, [fft_length])
    bins = tf.range(fft_length // 2 + 1, dtype=tf.float32)[None, :]
    hz = bins * tf.cast(rates, tf.float32)[:, None] / tf.cast(fft_length, tf.float32)
    low = 0.85 * cutoff_hz
    ramp = 0.5 * (
        1.0 + tf.cos(math.pi * tf.clip_by_value((hz - low) / (cutoff_hz - low), 0.0, 1.0))
    )
    gain = tf.where(tf.cast(rates, tf.float32)[:, None] > 2.0 * cutoff_hz, ramp, 1.0)
    return tf.signal.irfft(spectrum * tf.cast(gain, spectrum.dtype), [fft_length])[:, :width]


def resample(
    waveforms: tf.Tensor, lengths: tf.Tensor, rates: tf.Tensor, target_rate: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Rows of `waveforms` `[N, T]` (valid for `lengths`, sampled at `rates`, both `[N]`)
    -> `([N, T'] float32 at target_rate, [N] int64 lengths)`.

    Rows at a higher rate are low-passed below the target's Nyquist first (no aliasing);
    then every row is linearly interpolated onto the target's sample times. Rows already
    at the target rate are returned unchanged; rows with rate 0 get length 0.
    """
    x = tf.cast(waveforms, tf.float32)
    lengths = tf.cast(lengths, tf.int64)
    rates = tf.cast(rates, tf.int64)
    out_lengths = tf.where(rates > 0, lengths * target_rate // tf.maximum(rates, 1), 0)
    x = tf.cond(
        tf.reduce_any((rates > target_rate) & (lengths > 0)),
        lambda: _low_pass(x, rates, target_rate / 2.0),
        lambda: x,
    )

    def interpolate():
        width = tf.reduce_max(tf.concat([out_lengths, [1]], 0))
        step = tf.cast(rates, tf.float64) / float(target_rate)
        where = tf.cast(tf.range(width), tf.float64)[None, :] * step[:, None]
        last = tf.maximum(lengths - 1, 0)[:, None]
        left = tf.minimum(tf.cast(tf.floor(where), tf.int64), last)
        frac = tf.cast(where - tf.floor(where), tf.float32)
        a = tf.gather(x, left, batch_dims=1)
        b = tf.gather(x, tf.minimum(left + 1, last), batch_dims=1)
        return a + frac * (b - a)

    same = tf.reduce_all((rates == target_rate) | (lengths == 0))
    x = tf.cond(same, lambda: x, interpolate)
    x *= tf.sequence_mask(out_lengths, tf.shape(x)[1], tf.float32)
    return x, out_lengths


def decode_batch(
    wav_bytes: tf.Tensor, sample_rate: int, max_seconds: float = 60.0
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """WAV files as bytes `[N]` -> (`[N, T]` float32 mono waveforms in [-1, 1) at
    `sample_rate`, `[N]` int32 lengths, `[N]` bool ok).

    An element that is empty, not a 16-bit PCM WAV, or cut before its first whole frame
    gives length 0 and `ok=False`; the others decode whatever the batch holds. At most
    `max_seconds` of each input is read. `T` is the longest length, at least 1; samples
    beyond each length are 0.
    """
    wav = tf.reshape(tf.convert_to_tensor(wav_bytes, tf.string), [-1])
    info = wav_info(wav)
    rates = info["sample_rate"]
    limit = tf.cast(tf.math.ceil(max_seconds * tf.cast(rates, tf.float64)), tf.int64)
    frames = tf.minimum(info["frames"], limit)
    channels = info["channels"]
    size = frames * channels * 2
    raw = tf.io.decode_raw(
        tf.strings.substr(wav, tf.cast(info["data_offset"], tf.int32), tf.cast(size, tf.int32)),
        tf.int16,
        little_endian=True,
        fixed_length=tf.cast(tf.reduce_max(tf.concat([size, [2]], 0)), tf.int32),
    )
    samples = _mono(tf.cast(raw, tf.float32) / 32768.0, frames, channels)
    waveforms, lengths = resample(samples, frames, rates, sample_rate)
    lengths = tf.cast(tf.minimum(lengths, int(max_seconds * sample_rate)), tf.int32)
    width = tf.reduce_max(tf.concat([lengths, [1]], 0))
    waveforms = tf.pad(waveforms, [[0, 0], [0, tf.maximum(width - tf.shape(waveforms)[1], 0)]])
    waveforms = waveforms[:, :width] * tf.sequence_mask(lengths, width, tf.float32)
    return waveforms, lengths, info["ok"] & (lengths > 0)


def pad_edges(
    waveforms: tf.Tensor,
    lengths: tf.Tensor,
    samples: int,
    level: float,
    seed: tuple[int, int] = (0, 0),
) -> tuple[tf.Tensor, tf.Tensor]:
    """`samples` of low noise (standard deviation `level`) before and after each waveform
    of `[N, T]` (lengths `[N]`): a trimmed clip gets the lead-in and tail that training
    utterances have, so a lone word is not read without context. The noise is fixed by
    `seed`: the same input gives the same output. Samples beyond the new lengths are 0."""
    if samples <= 0:
        return waveforms, lengths
    total = tf.shape(waveforms)[1] + 2 * samples
    t = tf.range(total)[None, :]
    new_lengths = lengths + 2 * samples
    shifted = tf.pad(waveforms, [[0, 0], [samples, samples]])
    speech = (t >= samples) & (t < samples + lengths[:, None])
    edge = (t < new_lengths[:, None]) & ~speech
    noise = tf.random.stateless_normal(tf.shape(shifted), seed=seed) * level
    return tf.where(speech, shifted, tf.where(edge, noise, 0.0)), new_lengths


def reverberate(waveform: tf.Tensor, rt60: tf.Tensor, rate: int, seed: tf.Tensor) -> tf.Tensor:
    """`waveform` `[T]` heard in a room whose reverberation time is `rt60` seconds: convolved
    (by FFT) with a synthetic impulse response, the direct sound then Gaussian noise decaying
    60 dB in `rt60` (the usual late-reverberation model), cut to its own length and brought
    back to its own RMS level. `seed`: a `[2]` stateless seed."""
    rt60 = tf.maximum(tf.cast(rt60, tf.float32), 1e-3)
    taps = tf.maximum(tf.cast(rt60 * rate, tf.int32), 1)
    t = tf.range(taps, dtype=tf.float32) / float(rate)
    tail = tf.random.stateless_normal([taps], seed) * tf.pow(10.0, -3.0 * t / rt60)
    response = tf.concat([[1.0], 0.5 * tail / tf.sqrt(float(rate) * rt60 / 6.9)], 0)
    n = tf.shape(waveform)[0]
    size = 2 ** tf.cast(
        tf.math.ceil(tf.math.log(tf.cast(n + taps + 1, tf.float32)) / math.log(2.0)), tf.int32
    )
    wet = tf.signal.irfft(
        tf.signal.rfft(waveform, [size]) * tf.signal.rfft(response, [size]), [size]
    )[:n]
    level = tf.sqrt(tf.reduce_mean(tf.square(waveform)) / (tf.reduce_mean(tf.square(wet)) + 1e-12))
    return wet * level


def perturb(
    waveform: tf.Tensor,
    speed: float = 0.0,
    gain_db: float = 0.0,
    noise_snr_db: float = 0.0,
    seed: tf.Tensor | None = None,
    tempo: float = 0.0,
    pitch: float = 0.0,
    vtlp: float = 0.0,
    reverb_rt60: float = 0.0,
    sample_rate: int = 8000,
) -> tf.Tensor:
    """One training utterance `[T]`, changed at random (training only): played at a speed
    factor drawn from [1 - speed, 1 + speed] (tempo and pitch together, by linear
    interpolation, as Ko et al.'s speed perturbation), its tempo alone changed by a factor
    within 1 +- `tempo`, its pitch alone within 1 +- `pitch`, its spectrum warped along
    frequency by a factor within 1 +- `vtlp` (vocal-tract-length perturbation; see
    `warping`), gained by up to +-`gain_db`, and with white noise at a signal-to-noise ratio
    drawn from [noise_snr_db, noise_snr_db + 20] dB, after a room's reverberation of a time
    drawn from [0, reverb_rt60] seconds (`reverberate`; `sample_rate` the waveform's). 0
    turns each off. `seed`: a `[2]` stateless seed (one per utterance)."""
    seed = tf.zeros([2], tf.int64) if seed is None else tf.cast(seed, tf.int64)
    seeds = tf.random.experimental.stateless_split(seed, 4)
    # The later kinds draw from a seed of their own, so the first ones draw as they did.
    warps = tf.random.experimental.stateless_split(
        tf.random.experimental.stateless_fold_in(seed, 1), 3
    )

    def factor(width: float, draw: tf.Tensor) -> tf.Tensor:
        return tf.random.stateless_uniform([], draw, 1.0 - width, 1.0 + width)

    if speed:
        waveform = play_at(waveform, factor(speed, seeds[0]))
    if tempo:
        waveform = stretch_tempo(waveform, factor(tempo, warps[0]))
    if pitch:
        waveform = shift_pitch(waveform, factor(pitch, warps[1]))
    if vtlp:
        waveform = warp_vocal_tract(waveform, factor(vtlp, warps[2]))
    if reverb_rt60:
        room = tf.random.experimental.stateless_split(
            tf.random.experimental.stateless_fold_in(seed, 2), 2
        )
        rt60 = tf.random.stateless_uniform([], room[0], 0.0, reverb_rt60)
        waveform = reverberate(waveform, rt60, sample_rate, room[1])
    if gain_db:
        decibels = tf.random.stateless_uniform([], seeds[1], -gain_db, gain_db)
        waveform = waveform * tf.pow(10.0, decibels / 20.0)
    if noise_snr_db:
        snr = tf.random.stateless_uniform([], seeds[2], noise_snr_db, noise_snr_db + 20.0)
        power = tf.reduce_mean(tf.square(waveform))
        level = tf.sqrt(power / tf.pow(10.0, snr / 10.0))
        waveform = waveform + level * tf.random.stateless_normal(tf.shape(waveform), seeds[3])
    return tf.clip_by_value(waveform, -1.0, 1.0)
