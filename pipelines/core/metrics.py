"""Span precision, recall and F1: the bakeoff word measure and the CoNLL slot measure are
both exact-match counts over sets of spans."""

from __future__ import annotations

from collections.abc import Hashable, Iterable


def span_prf(gold: Iterable[set[Hashable]], pred: Iterable[set[Hashable]]) -> dict[str, float]:
    """Micro precision/recall/F1 over per-sentence span sets, plus the counts."""
    correct = n_gold = n_pred = 0
    for g, p in zip(gold, pred, strict=True):
        correct += len(g & p)
        n_gold += len(g)
        n_pred += len(p)
    precision = correct / n_pred if n_pred else 0.0
    recall = correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "correct": correct,
        "gold": n_gold,
        "predicted": n_pred,
    }
