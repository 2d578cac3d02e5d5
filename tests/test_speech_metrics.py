"""WER and CER are corpus-level edit rates: checked against jiwer on fixed and generated
cases (transcripts with single spaces, which both read the same way)."""

from __future__ import annotations

import jiwer
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.speech.metrics import (
    cer,
    error_counts,
    isolated_accuracy,
    normalise,
    speech_scores,
    wer,
    wer_of_speakers,
)

CASES = [
    (["seven two two eight"], ["seven two two eight"]),
    (["seven two two eight"], ["seven two eight"]),  # deletion
    (["one two"], ["one one two three"]),  # insertions
    (["nine"], ["five"]),  # substitution
    (["one two three", "four five", "six"], ["one tree", "four five six", ""]),
    (["a b", ""], ["a", "x"]),  # an empty reference among others
    ([""], [""]),
    (["ünïcödé wörds"], ["unicode wörds"]),
]


@pytest.mark.parametrize("refs,hyps", CASES)
def test_matches_jiwer(refs, hyps):
    assert wer(refs, hyps) == pytest.approx(jiwer.wer(refs, hyps))
    assert cer(refs, hyps) == pytest.approx(jiwer.cer(refs, hyps))


words = st.lists(st.sampled_from(["one", "two", "three", "oh", "a", "eight"]), max_size=6)
texts = words.map(" ".join)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(texts, texts), min_size=1, max_size=5))
def test_matches_jiwer_on_generated_corpora(pairs):
    refs, hyps = [p[0] for p in pairs], [p[1] for p in pairs]
    if not any(refs):
        refs[0] = "one"
    assert wer(refs, hyps) == pytest.approx(jiwer.wer(refs, hyps))
    assert cer(refs, hyps) == pytest.approx(jiwer.cer(refs, hyps))


def test_corpus_level_is_total_edits_over_total_reference():
    refs, hyps = ["one two three four", "five"], ["one two three four", "six"]
    assert error_counts(refs, hyps, "word") == (1, 5)
    assert wer(refs, hyps) == pytest.approx(1 / 5)  # not the mean of 0 and 1
    assert error_counts(refs, hyps, "char") == (3, 22)


def test_whitespace_is_normalised():
    assert normalise("  seven   two ") == "seven two"
    assert wer(["seven two"], ["  seven   two "]) == 0.0
    assert cer(["seven two"], ["seven  two "]) == 0.0


def test_isolated_accuracy_and_scores():
    refs, hyps = ["one", "two", "three", "four"], ["one", "two two", " three", "for"]
    assert isolated_accuracy(refs, hyps) == 0.5
    scores = speech_scores(refs, hyps)
    assert scores["sentence_accuracy"] == 0.5
    assert scores["wer"] == pytest.approx(jiwer.wer(refs, [normalise(h) for h in hyps]))


def test_mismatched_lengths_and_units_are_errors():
    with pytest.raises(ValueError, match="2 references but 1"):
        wer(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="unit"):
        error_counts(["a"], ["a"], "phone")
    assert wer([], []) == 0.0 and isolated_accuracy([], []) == 0.0


def test_wer_of_speakers_pools_the_chosen_speakers_utterances():
    speakers = ["theo", "jackson", "theo", "lucas"]
    refs = ["one two", "three", "four five six", "seven"]
    hyps = ["one", "three", "four five six", "eight"]
    assert wer_of_speakers(speakers, refs, hyps, {"theo"}) == pytest.approx(1 / 5)  # pooled
    assert wer_of_speakers(speakers, refs, hyps, {"jackson", "lucas"}) == 0.5
    assert wer_of_speakers(speakers, refs, hyps, {"nicolas"}) is None
    assert wer_of_speakers(speakers, refs, hyps, set()) is None
