"""`tfpipe run translation` with `model.name=rnn_attention` learns the bundled sample (a
file of its own, so it trains beside the Transformer's tests, on the other pytest worker)."""

from __future__ import annotations

import pytest
from test_translation_pipeline import TINY_RNN, _run

pytestmark = pytest.mark.slow


def test_rnn_attention_learns_the_sample(tmp_path_factory):
    _, scores, stdout = _run(tmp_path_factory, "translation-rnn", TINY_RNN)
    assert scores["bleu"] > 50, stdout[-2000:]
