"""Typed config of the segmentation pipeline."""

from __future__ import annotations

import dataclasses
from typing import Literal

from pipelines.core.config import DataConfig, PipelineConfig, TrainConfig


@dataclasses.dataclass
class SegmentationDataConfig(DataConfig):
    train: str = "cws/sample_train.txt"  # relative to the data dir
    test: str = "cws/sample_test.txt"
    validation: str = ""  # empty: hold out `val_fraction` of train
    val_fraction: float = 0.1
    normalise: bool = True  # as the shared SIGHAN corpora: digits -> 0, Latin -> X
    char_min_count: int = 1
    bigram_min_count: int = 2
    lexicon: str = "jieba"  # jieba | none | a word-per-line file under the data dir
    max_word: int = 4  # longest lexicon word used as a feature
    split_clauses: bool = True  # train on clauses cut after punctuation words
    bigram_unknown_rate: float = 0.0  # training only: bigram ids replaced by the unknown id
    shuffle_buffer: int = 20000
    cache: bool = True


@dataclasses.dataclass
class SegmentationModelConfig:
    char_dim: int = 128
    bigram_dim: int = 64
    use_bigrams: bool = True
    layers: int = 1  # stack more with model.layers=N (2 measured no better on PKU, 2x slower)
    units: int = 64
    cell: Literal["lstm", "gru"] = "lstm"  # lstm is served by a fused kernel
    dropout: float = 0.2
    embedding_dropout: float = 0.1
    projection: int = 64  # >0: project the features to this width before the BiLSTM


@dataclasses.dataclass
class SegmentationServingConfig:
    """Serving options: they may change when a trained run is exported again."""

    separator: str = " "  # joins the words of the `segmented` output
    # Run the trained LSTM weights in TensorFlow's fused BlockLSTMV2 kernel (one op per
    # direction) instead of Keras' per-step graph: see the benchmark A/B in README.md.
    fused_lstm: bool = True


@dataclasses.dataclass
class SegmentationConfig(PipelineConfig):
    data: SegmentationDataConfig = dataclasses.field(default_factory=SegmentationDataConfig)
    model: SegmentationModelConfig = dataclasses.field(default_factory=SegmentationModelConfig)
    serving: SegmentationServingConfig = dataclasses.field(
        default_factory=SegmentationServingConfig
    )
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            epochs=8, batch_size=32, learning_rate=1e-3, early_stopping_patience=3
        )
    )
