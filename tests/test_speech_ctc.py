"""CTC parts: decoding known posteriors (greedy and beam search, blanks and repeats
collapsed, the confidence), the loss and its guard against unalignable utterances, the
recogniser's lengths, batch invariance, training with plain `fit`, saving, the label
vocabulary."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.speech import (
    CTCLoss,
    CTCModelSpec,
    CTCVocabulary,
    LogMelSpectrogram,
    SpecAugment,
    build_ctc_model,
    ctc_decode,
    min_ctc_frames,
    output_lengths,
)


def path_logits(paths: list[list[int]], classes: int, margin: float = 8.0) -> np.ndarray:
    """Logits whose best frame-by-frame path is `paths[b]` (padded with blanks)."""
    width = max(len(p) for p in paths)
    logits = np.zeros((len(paths), width, classes), np.float32)
    for b, path in enumerate(paths):
        for t, c in enumerate(path):
            logits[b, t, c] = margin
    return logits


@pytest.mark.parametrize("strategy", ["greedy", "beam_search"])
def test_decoding_collapses_repeats_and_removes_blanks(strategy):
    paths = [
        [1, 1, 0, 1, 2, 2, 0, 0],  # a a _ a b b _ _ -> a a b
        [0, 3, 3, 3, 0, 0, 3, 0],  # _ c c c _ _ c _ -> c c
        [0, 0, 0, 0, 0, 0, 0, 0],  # all blank -> nothing
        [2, 1, 2, 1, 0, 0, 0, 0],
    ]  # b a b a -> b a b a
    out = ctc_decode(path_logits(paths, 4), [8, 8, 8, 8], strategy=strategy, beam_width=8)
    assert out["ids"].dtype == tf.int32 and out["ids"].shape == (4, 4)
    np.testing.assert_array_equal(out["lengths"], [3, 2, 0, 4])
    np.testing.assert_array_equal(
        out["ids"], [[1, 1, 2, -1], [3, 3, -1, -1], [-1, -1, -1, -1], [2, 1, 2, 1]]
    )
    assert np.all(out["confidence"].numpy() > 0.9)


@pytest.mark.parametrize("strategy", ["greedy", "beam_search"])
def test_frames_beyond_each_length_are_ignored(strategy):
    logits = path_logits([[1, 0, 2, 0, 3, 3]], 4)
    out = ctc_decode(logits, [3], strategy=strategy)
    np.testing.assert_array_equal(out["ids"], [[1, 2]])


def test_beam_search_finds_the_labelling_greedy_misses():
    # Two frames, p(blank) = 0.6, p(a) = 0.4: the best path is blank blank (0.36), but the
    # labelling "a" has three paths, a a, a _, _ a: 0.16 + 0.24 + 0.24 = 0.64.
    logits = np.log(np.array([[[0.6, 0.4], [0.6, 0.4]]], np.float32))
    greedy = ctc_decode(logits, [2], "greedy")
    beam = ctc_decode(logits, [2], "beam_search", beam_width=4)
    assert int(greedy["lengths"][0]) == 0
    assert float(greedy["confidence"][0]) == pytest.approx(0.36, abs=1e-4)
    np.testing.assert_array_equal(beam["ids"], [[1]])
    assert float(beam["confidence"][0]) == pytest.approx(0.64, abs=1e-4)
    assert float(beam["log_probability"][0]) == pytest.approx(np.log(0.64), abs=1e-4)
    frame = ctc_decode(logits, [2], "beam_search", confidence="frame")
    assert float(frame["confidence"][0]) == pytest.approx(0.6, abs=1e-5)


def test_rows_without_frames_decode_to_nothing_with_zero_confidence():
    logits = path_logits([[1, 2, 0], [1, 2, 0]], 3)
    for strategy in ("greedy", "beam_search"):
        out = ctc_decode(logits, [0, 3], strategy=strategy)
        np.testing.assert_array_equal(out["lengths"], [0, 2])
        assert float(out["confidence"][0]) == 0.0


def test_unknown_strategy_or_confidence_is_an_error():
    with pytest.raises(ValueError, match="strategy"):
        ctc_decode(path_logits([[1]], 2), [1], strategy="viterbi")
    with pytest.raises(ValueError, match="confidence"):
        ctc_decode(path_logits([[1]], 2), [1], confidence="max")


def test_min_frames_count_a_blank_between_repeats():
    labels = tf.constant([[1, 1, 2, -1], [3, 3, 3, 3], [1, 2, 1, 0], [-1, -1, -1, -1]])
    np.testing.assert_array_equal(min_ctc_frames(labels), [4, 7, 3, 0])


def test_loss_matches_tensorflow_ctc_and_skips_unalignable_rows():
    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(3, 6, 4)), tf.float32)
    labels = tf.constant([[1, 2, 3, -1], [2, 2, -1, -1], [1, 1, 1, 1]])
    lengths = tf.constant([6, 5, 6])  # row 3 needs 7 frames
    loss = CTCLoss(reduction="none")
    with tf.GradientTape() as tape:
        tape.watch(logits)
        values = loss(labels, {"logits": logits, "logit_lengths": lengths})
    expected = tf.nn.ctc_loss(
        tf.maximum(labels, 0)[:2],
        logits[:2],
        [3, 2],
        [6, 5],
        logits_time_major=False,
        blank_index=0,
    )
    np.testing.assert_allclose(values[:2], expected, rtol=1e-5)
    assert float(values[2]) == 0.0
    gradient = tape.gradient(values, logits).numpy()
    assert np.all(np.isfinite(gradient)) and np.all(gradient[2] == 0)


def test_output_lengths_follow_the_strides():
    np.testing.assert_array_equal(
        output_lengths(tf.constant([0, 1, 7, 8, 9]), (2, 2)), [0, 1, 2, 2, 3]
    )


SPECS = [
    dict(conv="2d", conv_filters=(4, 4), time_strides=(2, 2), freq_strides=(2, 2), cell="gru"),
    dict(conv="1d", conv_filters=(8,), time_strides=(3,), cell="lstm", projection=6),
]


@pytest.mark.parametrize("kwargs", SPECS)
def test_model_lengths_and_batch_invariance(kwargs):
    spec = CTCModelSpec(num_classes=5, num_features=16, layers=2, units=8, **kwargs)
    model = build_ctc_model(spec)
    rng = np.random.default_rng(1)
    frames = np.array([37, 20, 0])
    features = rng.normal(size=(3, 37, 16)).astype(np.float32)
    features *= (np.arange(37)[None, :] < frames[:, None])[..., None]
    out = model({"features": features, "frame_lengths": frames})
    np.testing.assert_array_equal(out["logit_lengths"], output_lengths(frames, spec.time_strides))
    assert out["logits"].shape[-1] == 5 and out["logits"].dtype == tf.float32
    n = int(out["logit_lengths"][1])
    alone = model({"features": features[1:2, :20], "frame_lengths": frames[1:2]})
    np.testing.assert_allclose(alone["logits"][0, :n], out["logits"][1, :n], atol=1e-5)


def test_bad_spec_is_an_error():
    with pytest.raises(ValueError, match="cell"):
        CTCModelSpec(num_classes=3, cell="rnn")
    with pytest.raises(ValueError, match="stride"):
        CTCModelSpec(num_classes=3, conv_filters=(8, 8), time_strides=(2,))


def toy_batches(seed: int = 0):
    """Waveforms where label 1 is a low tone and label 2 a high one, silence between
    (learning the sample corpus is checked by a script: too slow for a test)."""
    rng = np.random.default_rng(seed)
    waves, labels = [], []
    for _ in range(16):
        seq = list(rng.integers(1, 3, size=rng.integers(1, 4)))
        parts = [np.zeros(400)]
        for label in seq:
            t = np.arange(1600) / 8000
            parts += [0.5 * np.sin(2 * np.pi * (400 if label == 1 else 2000) * t), np.zeros(800)]
        waves.append(np.concatenate(parts).astype(np.float32))
        labels.append(seq)
    lengths = np.array([len(w) for w in waves], np.int32)
    batch = np.zeros((len(waves), lengths.max()), np.float32)
    targets = np.full((len(waves), 3), -1, np.int32)
    for i, (w, y) in enumerate(zip(waves, labels, strict=True)):
        batch[i, : len(w)] = w
        targets[i, : len(y)] = y
    return {"waveform": batch, "lengths": lengths}, targets


def test_trains_with_plain_fit_and_survives_saving(tmp_path):
    keras.utils.set_random_seed(0)
    spec = CTCModelSpec(
        num_classes=3,
        num_features=16,
        conv="1d",
        conv_filters=(16,),
        time_strides=(2,),
        layers=1,
        units=32,
        dropout=0.0,
    )
    model = build_ctc_model(
        spec,
        LogMelSpectrogram(8000, n_mels=16),
        SpecAugment(freq_masks=1, freq_width=2, time_masks=0, seed=0),
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2, clipnorm=1.0))  # no loss: its own
    x, y = toy_batches()
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    history = model.fit(data, epochs=12, verbose=0, validation_data=data)
    assert history.history["loss"][-1] < 0.25 * history.history["loss"][0]
    assert "val_loss" in history.history
    out = model(x, training=False)
    decoded = ctc_decode(out["logits"], out["logit_lengths"])
    assert decoded["ids"].shape[0] == len(y)

    model.save(tmp_path / "ctc.keras")
    restored = keras.models.load_model(tmp_path / "ctc.keras")
    again = restored(x, training=False)
    np.testing.assert_allclose(again["logits"], out["logits"], atol=1e-5)
    assert restored.evaluate(data, verbose=0) == pytest.approx(
        model.evaluate(data, verbose=0), rel=1e-4
    )


def test_vocabulary_encodes_and_decodes_chars_and_words():
    chars = CTCVocabulary(list("abc "), unit="char")
    assert chars.num_classes == 5
    ids = chars(tf.constant(["ab  c ", "ca"]))
    np.testing.assert_array_equal(ids, [[1, 2, 4, 3], [3, 1, -1, -1]])
    spaced = tf.constant([[4, 1, 4, 4, 2, 4], [0, 3, -1, 9, -1, -1]])
    np.testing.assert_array_equal(chars.decode(spaced), [b"a b", b"c"])
    words = CTCVocabulary(["one", "two"], unit="word")
    np.testing.assert_array_equal(
        words(tf.constant(["two one two", "three"])), [[2, 1, 2], [-1, -1, -1]]
    )
    np.testing.assert_array_equal(words.decode(tf.constant([[2, 1, -1]])), [b"two one"])
    with pytest.raises(ValueError, match="distinct"):
        CTCVocabulary(["a", "a"])
    with pytest.raises(ValueError, match="whitespace"):
        CTCVocabulary(["a b"], unit="word")


def test_snap_to_lexicon_picks_the_nearest_word():
    import tensorflow as tf

    from tfmodels.speech import snap_to_lexicon

    lexicon = ["zero", "one", "two", "three", "four", "eight", "six"]
    out = snap_to_lexicon(tf.constant(["thre eigh fouor", "", "one  two", "sixo", "zzz"]), lexicon)
    assert [t.decode() for t in out.numpy()] == ["three eight four", "", "one two", "six", "zero"]
    assert snap_to_lexicon(tf.constant([], tf.string), lexicon).shape == (0,)
