"""Slot F1 is CoNLL span F1: checked against seqeval (conlleval-compatible default mode) on
generated tag sequences, valid and invalid BIO alike."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.metrics.sequence_labeling import precision_recall_fscore_support

from pipelines.slots.metrics import (
    bio_spans,
    format_report,
    joint_scores,
    per_type_scores,
    slot_scores,
)

# seqeval warns when a type has no gold or no predicted spans; it scores 0, as we do.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TAGS = ["O", "B-a", "I-a", "B-b", "I-b", "B-c.d", "I-c.d"]
sentence = st.lists(st.sampled_from(TAGS), min_size=1, max_size=12)


@st.composite
def gold_and_pred(draw):
    gold = draw(st.lists(sentence, min_size=1, max_size=8))
    pred = []
    for g in gold:
        # Mostly right with some noise, so scores cover the whole range.
        pred.append([t if draw(st.booleans()) else draw(st.sampled_from(TAGS)) for t in g])
    return gold, pred


@settings(max_examples=300, deadline=None)
@given(gold_and_pred())
def test_slot_scores_match_seqeval(data):
    gold, pred = data
    ours = slot_scores(gold, pred)
    assert ours["f1"] == pytest.approx(f1_score(gold, pred), abs=1e-9)
    assert ours["precision"] == pytest.approx(precision_score(gold, pred), abs=1e-9)
    assert ours["recall"] == pytest.approx(recall_score(gold, pred), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(gold_and_pred())
def test_per_type_scores_match_seqeval(data):
    gold, pred = data
    ours = per_type_scores(gold, pred)
    p, r, f, support = precision_recall_fscore_support(gold, pred, average=None)
    from seqeval.metrics.sequence_labeling import get_entities

    kinds = sorted({e[0] for seq in gold + pred for e in get_entities(seq)})
    assert sorted(ours) == kinds
    for kind, pk, rk, fk, sk in zip(kinds, p, r, f, support, strict=True):
        assert ours[kind]["precision"] == pytest.approx(pk)
        assert ours[kind]["recall"] == pytest.approx(rk)
        assert ours[kind]["f1"] == pytest.approx(fk)
        assert ours[kind]["gold"] == sk


def test_conlleval_chunking_of_invalid_sequences():
    # An I- after O or after another type starts a chunk, as conlleval reads it.
    assert bio_spans(["O", "I-a", "I-a", "B-a", "I-b"]) == {("a", 1, 2), ("a", 3, 3), ("b", 4, 4)}
    assert bio_spans([]) == set()


def test_joint_scores_counts_by_hand():
    gold = [["B-a", "I-a", "O"], ["O", "B-b"], ["B-a"]]
    pred = [["B-a", "I-a", "O"], ["O", "O"], ["B-b"]]
    scores = joint_scores(gold, pred, ["x", "y", "x"], ["x", "y", "y"])
    # Gold spans 3, predicted 2, correct 1.
    assert scores["slot_precision"] == pytest.approx(1 / 2)
    assert scores["slot_recall"] == pytest.approx(1 / 3)
    assert scores["slot_f1"] == pytest.approx(0.4)
    assert scores["intent_accuracy"] == pytest.approx(2 / 3)
    # Only the first sentence has every slot and the intent right.
    assert scores["sentence_accuracy"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        joint_scores(gold, pred[:2], ["x"] * 3, ["x"] * 3)


def test_report_lists_every_type():
    gold = [["B-a", "I-a", "O", "B-b"]]
    pred = [["B-a", "I-a", "O", "O"]]
    text = format_report(per_type_scores(gold, pred), slot_scores(gold, pred))
    lines = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip()}
    assert lines["a"] == ["1.0000", "1.0000", "1.0000", "1"]
    assert lines["b"] == ["0.0000", "0.0000", "0.0000", "1"]
    assert "micro" in lines
