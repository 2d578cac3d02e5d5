"""The bakeoff measure: word precision, recall and F1 over character-offset spans."""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.core.metrics import span_prf


def word_spans(words: Sequence[str]) -> set[tuple[int, int]]:
    spans, start = set(), 0
    for word in words:
        if word:
            spans.add((start, start + len(word)))
            start += len(word)
    return spans


def word_prf(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro P/R/F1 of predicted words against gold words, sentence by sentence.

    Both sides must segment the same text; a mismatch is an error, not a low score.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if "".join(g) != "".join(p):
            raise ValueError(f"sentence {i + 1}: predicted words do not spell the gold text")
    return span_prf((word_spans(g) for g in gold), (word_spans(p) for p in pred))
