"""Speech recognition scores: word and character error rates, corpus-level (total edits
over total reference words or characters, as jiwer and most papers count them), and the
accuracy of isolated-word recognition.

Transcripts are compared with whitespace runs read as one space and the ends stripped, so
the CER counts a word break as one character. Edit distances are TensorFlow's
(`tf.edit_distance`, Levenshtein with unit costs).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf


def normalise(text: str) -> str:
    """Whitespace runs as one space, the ends stripped."""
    return " ".join(text.split())


def _units(texts: Sequence[str], unit: str) -> tf.SparseTensor:
    rows = [normalise(t).split() if unit == "word" else list(normalise(t)) for t in texts]
    return tf.ragged.constant(rows, dtype=tf.string, ragged_rank=1, inner_shape=()).to_sparse()


def error_counts(refs: Sequence[str], hyps: Sequence[str], unit: str = "word") -> tuple[int, int]:
    """(total edits, total reference units) of `hyps` against `refs`, `unit` "word" or
    "char": the two sums behind a corpus-level error rate, to add up across batches."""
    if unit not in ("word", "char"):
        raise ValueError(f"unit must be 'word' or 'char', not '{unit}'")
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        return 0, 0
    truth, hypothesis = _units(refs, unit), _units(hyps, unit)
    edits = tf.edit_distance(hypothesis, truth, normalize=False)
    return int(round(float(tf.reduce_sum(edits)))), int(truth.values.shape[0])


def _rate(edits: int, total: int) -> float:
    """Edits per reference unit; with no reference units, 0 if no edits else 1 per edit."""
    return edits / total if total else float(edits)


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Word error rate: (substitutions + deletions + insertions) / reference words."""
    return _rate(*error_counts(refs, hyps, "word"))


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Character error rate over the characters of each (whitespace-normalised) text."""
    return _rate(*error_counts(refs, hyps, "char"))


def isolated_accuracy(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Share of utterances whose hypothesis is exactly the reference (isolated words)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        return 0.0
    return sum(normalise(r) == normalise(h) for r, h in zip(refs, hyps, strict=True)) / len(refs)


def speech_scores(refs: Sequence[str], hyps: Sequence[str]) -> dict[str, float]:
    """`wer`, `cer` and `sentence_accuracy` (exact transcripts) of a corpus."""
    return {
        "wer": wer(refs, hyps),
        "cer": cer(refs, hyps),
        "sentence_accuracy": isolated_accuracy(refs, hyps),
    }


def wer_of_speakers(
    speakers: Sequence[str], refs: Sequence[str], hyps: Sequence[str], chosen: set[str]
) -> float | None:
    """The corpus-level WER of the utterances whose speaker (`speakers`, one per
    utterance) is in `chosen`; None if there are none."""
    pairs = [(r, h) for s, r, h in zip(speakers, refs, hyps, strict=True) if s in chosen]
    if not pairs:
        return None
    return wer([r for r, _ in pairs], [h for _, h in pairs])
