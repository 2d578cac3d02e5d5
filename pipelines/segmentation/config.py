"""Typed config of the segmentation pipeline."""

from __future__ import annotations

import dataclasses

from pipelines.core.config import DataConfig, PipelineConfig, TrainConfig
from tfmodels.taggers.config import CharTaggerConfig


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
class SegmentationModelConfig(CharTaggerConfig):
    """The character tagger (`tfmodels.taggers.CharTaggerConfig`): nothing of its own."""


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
