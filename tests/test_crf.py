"""The CRF's likelihood and decoding against brute force over every tag sequence, and its
transitions learning through `CRFLoss` inside `model.fit`."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfmodels.taggers.crf import CRFLoss, CRFTransitions, crf_negative_log_likelihood
from tfmodels.taggers.viterbi import ConstrainedViterbi, bio_transitions

TAGS = ["O", "B-x", "I-x", "B-y", "I-y"]


def path_score(logits, transitions, path) -> float:
    k = logits.shape[-1]
    score = transitions[k, path[0]] + transitions[path[-1], k]
    score += sum(logits[t, tag] for t, tag in enumerate(path))
    score += sum(transitions[a, b] for a, b in itertools.pairwise(path))
    return float(score)


def brute_nll(logits, transitions, gold) -> float:
    k = logits.shape[-1]
    scores = [
        path_score(logits, transitions, p) for p in itertools.product(range(k), repeat=len(gold))
    ]
    return float(np.logaddexp.reduce(scores) - path_score(logits, transitions, gold))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_negative_log_likelihood_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    k, width, lengths = 3, 4, [4, 2, 1, 0]
    logits = rng.normal(size=(len(lengths), width, k)).astype(np.float32)
    transitions = rng.normal(size=(k + 1, k + 1)).astype(np.float32)
    tags = np.full((len(lengths), width), -1, np.int32)
    for row, n in enumerate(lengths):
        tags[row, :n] = rng.integers(0, k, n)
    got = crf_negative_log_likelihood(
        tf.constant(logits), tf.constant(tags), tf.constant(transitions)
    ).numpy()
    expected = [
        brute_nll(logits[r, :n], transitions, list(tags[r, :n])) if n else 0.0
        for r, n in enumerate(lengths)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_viterbi_with_transitions_is_the_best_valid_path():
    rng = np.random.default_rng(3)
    k, length = len(TAGS), 4
    allowed = bio_transitions(TAGS)
    for _ in range(5):
        logits = rng.normal(scale=2.0, size=(1, length, k)).astype(np.float32)
        transitions = rng.normal(size=(k + 1, k + 1)).astype(np.float32)
        path = ConstrainedViterbi(allowed)(
            tf.constant(logits), tf.constant([length]), tf.constant(transitions)
        ).numpy()[0]
        valid = [
            p
            for p in itertools.product(range(k), repeat=length)
            if allowed[k, p[0]]
            and allowed[p[-1], k]
            and all(allowed[a, b] for a, b in itertools.pairwise(p))
        ]
        best = max(valid, key=lambda p: path_score(logits[0], transitions, p))
        assert list(path) == list(best)


def test_transitions_learn_through_the_loss_in_fit():
    # Tag 1 always follows tag 0 and the inputs cannot tell which is which: only the
    # transitions can learn it.
    k, width = 3, 6
    inputs = keras.Input((width, 1))
    logits = keras.layers.Dense(k)(inputs)
    crf = CRFTransitions(k, name="crf")
    model = keras.Model(inputs, crf(logits))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=CRFLoss(crf))
    x = np.ones((64, width, 1), np.float32)
    y = np.tile(np.array([[0, 1, 0, 1, -1, -1]], np.int32), (64, 1))
    history = model.fit(x, y, epochs=30, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    t = np.asarray(crf.transitions)
    assert t[0, 1] > t[0, 0] and t[0, 1] > t[0, 2]  # 0 -> 1 learned
    assert t[k, 0] > t[k, 1]  # sequences start with 0
