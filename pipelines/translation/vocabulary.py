"""Subword vocabularies learned from the training split with tensorflow-text's WordPiece
learner (what `bert_vocab_from_dataset` runs), over the same pieces the graph tokenizer
splits text into (`tfmodels.translation.pretokenize`), so the two always agree."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import tensorflow as tf
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

from tfmodels.translation import RESERVED_TOKENS, pretokenize

_BATCH = 4096


def piece_counts(lines: Sequence[str]) -> Counter:
    """How often each pre-tokenized piece occurs in `lines`."""
    counts: Counter = Counter()
    for start in range(0, len(lines), _BATCH):
        pieces = pretokenize(tf.constant(list(lines[start : start + _BATCH]), tf.string))
        counts.update(p.decode("utf-8") for p in pieces.flat_values.numpy())
    return counts


def learn_vocabulary(lines: Sequence[str], size: int) -> list[str]:
    """A cased WordPiece vocabulary of at most about `size` entries, the reserved tokens
    ([PAD], [UNK], [START], [END]) first; every character seen is in it, so text made of
    known characters never tokenizes to [UNK]."""
    counts = piece_counts(lines)
    # The learner binary-searches a count threshold between these bounds, one learning
    # pass per try: a tight upper bound (a piece in every thousandth piece of text is kept
    # whatever the size) saves most of the tries of the default 10 million.
    upper = max(16, sum(counts.values()) // 1000)
    vocabulary = learner.learn(
        list(counts.items()),
        size,
        list(RESERVED_TOKENS),
        upper_thresh=upper,
        lower_thresh=1,
        max_token_length=50,
    )
    rest = [v for v in vocabulary if v not in RESERVED_TOKENS]
    return [*RESERVED_TOKENS, *rest]
