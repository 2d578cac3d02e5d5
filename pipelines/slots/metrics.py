"""Slot-filling metrics: CoNLL span F1 over BIO tags (the conlleval/seqeval chunking, so an
`I-x` after `O` or after another type starts a chunk, as the published figures count it),
intent accuracy and sentence accuracy."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from pipelines.core.metrics import span_prf

Span = tuple[str, int, int]  # type, first word, last word (inclusive)


def _split(tag: str) -> tuple[str, str]:
    if tag == "O" or "-" not in tag:
        return "O", ""
    prefix, _, kind = tag.partition("-")
    return prefix, kind


def bio_spans(tags: Sequence[str]) -> set[Span]:
    """Chunks of a tag sequence as conlleval reads them (IOB2, lenient on invalid I-)."""
    spans: set[Span] = set()
    start, kind = None, ""
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, k = _split(tag)
        ends = start is not None and (prefix in ("O", "B") or k != kind)
        if ends:
            spans.add((kind, start, i - 1))
            start = None
        if prefix == "B" or (prefix == "I" and start is None):
            start, kind = i, k
    return spans


def slot_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro span precision/recall/F1 over all sentences."""
    return span_prf([bio_spans(g) for g in gold], [bio_spans(p) for p in pred])


def per_type_scores(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]
) -> dict[str, dict[str, float]]:
    """Span precision/recall/F1 and support for each slot type."""
    by_type: dict[str, tuple[list, list]] = defaultdict(lambda: ([], []))
    gold_spans = [bio_spans(g) for g in gold]
    pred_spans = [bio_spans(p) for p in pred]
    kinds = {s[0] for spans in gold_spans + pred_spans for s in spans}
    for kind in kinds:
        g_list, p_list = by_type[kind]
        for g, p in zip(gold_spans, pred_spans, strict=True):
            g_list.append({s for s in g if s[0] == kind})
            p_list.append({s for s in p if s[0] == kind})
    return {kind: span_prf(*by_type[kind]) for kind in sorted(kinds)}


def joint_scores(
    gold_tags: Sequence[Sequence[str]],
    pred_tags: Sequence[Sequence[str]],
    gold_intents: Sequence[str],
    pred_intents: Sequence[str],
) -> dict[str, float]:
    """`slot_f1` (with precision and recall), `intent_accuracy`, `sentence_accuracy`."""
    if not (len(gold_tags) == len(pred_tags) == len(gold_intents) == len(pred_intents)):
        raise ValueError("gold and predicted sequences differ in number")
    slots = slot_scores(gold_tags, pred_tags)
    n = max(len(gold_intents), 1)
    intent_ok = [g == p for g, p in zip(gold_intents, pred_intents, strict=True)]
    sentence_ok = [
        ok and list(g) == list(p) for ok, g, p in zip(intent_ok, gold_tags, pred_tags, strict=True)
    ]
    return {
        "slot_f1": slots["f1"],
        "slot_precision": slots["precision"],
        "slot_recall": slots["recall"],
        "intent_accuracy": sum(intent_ok) / n,
        "sentence_accuracy": sum(sentence_ok) / n,
    }


def format_report(
    scores: dict[str, dict[str, float]], total: dict[str, float] | None = None
) -> str:
    """A fixed-width per-slot-type table (seqeval's classification_report layout)."""
    width = max([len(k) for k in scores] + [len("micro avg")])
    head = f"{'':<{width}}  precision    recall  f1-score   support"
    rows = [head, ""]
    for kind, s in scores.items():
        rows.append(
            f"{kind:<{width}}  {s['precision']:9.4f} {s['recall']:9.4f} "
            f"{s['f1']:9.4f} {s['gold']:9d}"
        )
    if total is not None:
        rows += [
            "",
            f"{'micro avg':<{width}}  {total['precision']:9.4f} {total['recall']:9.4f} "
            f"{total['f1']:9.4f} {total['gold']:9d}",
        ]
    return "\n".join(rows) + "\n"
