"""Decoding is constrained to valid BIO (no I-x after O or after B-y), whatever the logits
say; entities are read from the tags the way the span metric reads them."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.slots.metrics import bio_spans
from pipelines.slots.reader import bio_error
from pipelines.slots.serving import SlotDecoder, entities_text
from tfmodels.taggers.viterbi import ConstrainedViterbi, bio_transitions

TAGS = ["O", "B-from", "I-from", "B-to", "I-to", "B-date"]


def decode(logits: np.ndarray, lengths: list[int]) -> list[list[str]]:
    path = ConstrainedViterbi(bio_transitions(TAGS))(
        tf.constant(logits, tf.float32), tf.constant(lengths)
    )
    return [[TAGS[i] for i in row[:n]] for row, n in zip(path.numpy(), lengths, strict=True)]


def test_argmax_would_be_invalid_viterbi_is_not():
    # Position 1 prefers I-to after a confident O, position 3 prefers I-from after B-to.
    logits = np.full((1, 4, len(TAGS)), -5.0, np.float32)
    logits[0, 0, 0] = 5  # O
    logits[0, 1, 4] = 3  # I-to (invalid after O)
    logits[0, 1, 3] = 2  # B-to is the runner-up
    logits[0, 2, 3] = 5  # B-to
    logits[0, 3, 2] = 3  # I-from (invalid after B-to)
    logits[0, 3, 4] = 2.5  # I-to is valid
    argmax = [TAGS[i] for i in logits[0].argmax(-1)]
    assert bio_error(argmax) is not None
    tags = decode(logits, [4])[0]
    assert bio_error(tags) is None
    assert tags == ["O", "B-to", "B-to", "I-to"]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 9), st.integers(0, 2**31 - 1))
def test_decoded_sequences_are_always_valid_bio(batch, width, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (batch, width, len(TAGS))).astype(np.float32)
    logits[..., 2] += 2.0  # push towards I-from, often invalid
    lengths = rng.integers(0, width + 1, batch).tolist()
    for tags, n in zip(decode(logits, lengths), lengths, strict=True):
        assert len(tags) == n
        assert bio_error(tags) is None, tags


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from(TAGS), max_size=7), min_size=1, max_size=4))
def test_entities_text_lists_the_metric_spans(rows):
    tokens = [[f"w{i}x{j}" for j in range(len(r))] for i, r in enumerate(rows)]
    out = entities_text(
        tf.ragged.constant(tokens, dtype=tf.string, ragged_rank=1),
        tf.ragged.constant(rows, dtype=tf.string, ragged_rank=1),
    )
    for text, row, toks in zip(out.numpy(), rows, tokens, strict=True):
        expected = sorted(
            (start, f"{kind}={' '.join(toks[start : end + 1])}")
            for kind, start, end in bio_spans(row)
        )
        assert text.decode() == "; ".join(e for _, e in expected)


def test_slot_decoder_outputs():
    decoder = SlotDecoder(TAGS, ["flight", "airfare"])
    tokens = tf.ragged.constant([["from", "New", "York", "to", "Denver"], [], ["monday"]])
    logits = np.full((3, 5, len(TAGS)), -4.0, np.float32)
    for pos, tag in enumerate([0, 1, 2, 0, 3]):
        logits[0, pos, tag] = 4
    logits[2, 0, 5] = 4
    intent_logits = tf.constant([[2.0, 0.0], [0.0, 0.0], [0.0, 3.0]])
    out = decoder(tokens, tf.constant(logits), intent_logits)
    assert out["tokens"].shape == (3, 5) and out["slots"].shape == (3, 5)
    assert [s.decode() for s in out["slots"].numpy()[0]] == ["O", "B-from", "I-from", "O", "B-to"]
    assert [s.decode() for s in out["slots"].numpy()[1]] == [""] * 5
    assert [e.decode() for e in out["entities"].numpy()] == [
        "from=New York; to=Denver",
        "",
        "date=monday",
    ]
    assert [i.decode() for i in out["intent"].numpy()] == ["flight", "flight", "airfare"]
    probs = out["intent_probability"].numpy()
    assert probs[0] > 0.85 and probs[1] == np.float32(0.5) and probs[2] > 0.9


def test_multi_label_intents_lists_every_intent_above_half_most_probable_first():
    decoder = SlotDecoder(TAGS, ["airfare", "airline", "flight"], intent_separator="#")
    tokens = tf.ragged.constant([["a"], ["b"], ["c"]])
    logits = np.zeros((3, 1, len(TAGS)), np.float32)
    intent_logits = np.array(
        [
            [1.0, -3.0, 4.0],  # flight, then airfare: both above 0.5
            [-2.0, -1.0, -3.0],  # none above 0.5: the most probable
            [-4.0, 2.0, -4.0],
        ],
        np.float32,
    )
    out = decoder(tokens, tf.constant(logits), tf.constant(intent_logits))
    assert [i.decode() for i in out["intent"].numpy()] == ["flight#airfare", "airline", "airline"]
    # The probability of exactly that set, the labels independent.
    p = 1 / (1 + np.exp(-intent_logits))
    expected = [
        p[0, 2] * p[0, 0] * (1 - p[0, 1]),
        p[1, 1] * (1 - p[1, 0]) * (1 - p[1, 2]),
        p[2, 1] * (1 - p[2, 0]) * (1 - p[2, 2]),
    ]
    np.testing.assert_allclose(out["intent_probability"].numpy(), expected, rtol=1e-5)
