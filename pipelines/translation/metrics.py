"""BLEU and chrF by sacreBLEU, on detokenized output against the raw references: the
figures other papers and toolkits report, comparable because the tokenization is
sacreBLEU's own (13a) and its signature says how they were computed."""

from __future__ import annotations

from collections.abc import Sequence

import sacrebleu


def translation_scores(refs: Sequence[str], hyps: Sequence[str]) -> dict[str, float]:
    """Corpus `bleu` and `chrf` (sacreBLEU's 0-100 scale), one reference per sentence."""
    return {name: score for name, (score, _) in scored(refs, hyps).items()}


def scored(refs: Sequence[str], hyps: Sequence[str]) -> dict[str, tuple[float, str]]:
    """(score, sacreBLEU signature) of `bleu` and `chrf`: the signature says how the
    score was computed (`nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:...`)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    out = {}
    for name, metric in (("bleu", sacrebleu.BLEU()), ("chrf", sacrebleu.CHRF())):
        result = metric.corpus_score(list(hyps), [list(refs)])
        out[name] = (result.score, str(metric.get_signature()))
    return out
