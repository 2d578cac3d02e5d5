"""Sequence-to-sequence translation: reversible subword tokenization, the Transformer and
the recurrent encoder-decoder with attention, greedy and beam-search decoding."""

from tfmodels.translation.build import build_translator
from tfmodels.translation.config import TranslatorConfig
from tfmodels.translation.decoding import STOPS, beam_search, greedy_decode, length_penalty
from tfmodels.translation.rnn_attention import RNNAttentionTranslator
from tfmodels.translation.seq2seq import Seq2Seq
from tfmodels.translation.subwords import (
    END_ID,
    PAD_ID,
    RESERVED_TOKENS,
    START_ID,
    UNK_ID,
    SubwordTokenizer,
    pretokenize,
)
from tfmodels.translation.transformer import TransformerTranslator

__all__ = [
    "END_ID",
    "PAD_ID",
    "RESERVED_TOKENS",
    "START_ID",
    "STOPS",
    "UNK_ID",
    "RNNAttentionTranslator",
    "Seq2Seq",
    "SubwordTokenizer",
    "TransformerTranslator",
    "TranslatorConfig",
    "beam_search",
    "build_translator",
    "greedy_decode",
    "length_penalty",
    "pretokenize",
]
