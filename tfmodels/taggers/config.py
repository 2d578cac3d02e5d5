"""The taggers' configs (`model.*` of the segmentation and slot-filling pipelines), as a
config file writes them. The specs' `from_config` add what the data decides (vocabulary
sizes, tag and intent counts)."""

from __future__ import annotations

import dataclasses
from typing import Literal

Cell = Literal["lstm", "gru"]  # lstm is served by a fused kernel (`fused_lstm`)


@dataclasses.dataclass
class CharTaggerConfig:
    """A character tagger (word segmentation): character and bigram embeddings into a
    stacked BiRNN (`TaggerSpec.from_char_config`)."""

    char_dim: int = 128
    bigram_dim: int = 64
    use_bigrams: bool = True
    layers: int = 1  # stack more with model.layers=N (2 measured no better on PKU, 2x slower)
    units: int = 64
    cell: Cell = "lstm"
    dropout: float = 0.2
    embedding_dropout: float = 0.1
    projection: int = 64  # >0: project the features to this width before the BiLSTM


@dataclasses.dataclass
class JointTaggerConfig:
    """A joint tagger and sequence classifier (slot filling with intent detection): word
    embeddings and a character CNN into a stacked BiRNN (`JointTaggerSpec.from_config`)."""

    word_dim: int = 100
    embedding_init_stddev: float = 1.0  # normal(0, this) word/char vectors: learns faster
    char_dim: int = 32
    char_filters: int = 64
    char_kernel_sizes: list[int] = dataclasses.field(default_factory=lambda: [3])
    use_chars: bool = True
    layers: int = 2
    units: int = 128
    cell: Cell = "lstm"
    dropout: float = 0.15
    embedding_dropout: float = 0.1
    attention_units: int = 64
    intent_dropout: float = 0.2
    intent_context: int = 64  # width of the utterance vector the slot head also sees; 0 = off
    crf: bool = False  # a CRF over the slot logits (learned transitions) instead of softmax
