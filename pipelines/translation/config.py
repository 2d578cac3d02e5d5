"""Typed config of the translation pipeline (`tfpipe run translation`)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from pipelines.core.config import DataConfig, PipelineConfig, ScheduleConfig, TrainConfig
from tfmodels.translation.config import TranslatorConfig


@dataclasses.dataclass
class TranslationDataConfig(DataConfig):
    """Line-aligned parallel files: `{corpus}/{split}.{source}` and `.{target}`."""

    corpus: str = "translation/sample"  # relative to the data dir
    source: str = "en"
    target: str = "de"
    train: str = "train"
    validation: str = "val"
    test: str = "test"
    # Subword vocabulary sizes (WordPiece, learned from the training split; at most).
    source_vocab_size: int = 8000
    target_vocab_size: int = 8000
    # One vocabulary learned from both sides of the training split, for source and target
    # (what `model.tie_embeddings` needs), of at most `shared_vocab_size` entries (0: the
    # sum of the two sizes above).
    shared_vocab: bool = False
    shared_vocab_size: int = 0
    # Pairs with an empty side, or more subword tokens than these, are left out of
    # training and counted. Serving cuts longer input to `max_source_tokens`.
    max_source_tokens: int = 100
    max_target_tokens: int = 100
    shuffle_buffer: int = 30000


@dataclasses.dataclass
class TranslationModelConfig(TranslatorConfig):
    """The translator (`tfmodels.translation.TranslatorConfig`) and its training loss."""

    label_smoothing: float = 0.1


@dataclasses.dataclass
class TranslationEvalConfig:
    """Decoding during training is costly: BLEU on dev only every few epochs."""

    every_epochs: int = 1  # dev BLEU/chrF every N epochs (0: never during training)
    decoder: Literal["greedy", "beam_search"] = "greedy"  # dev decoding (beam: the export's)
    attention_plots: int = 4  # test sentences drawn as cross-attention heat maps


@dataclasses.dataclass
class TranslationServingConfig:
    """Serving options: they may change when a trained run is exported again."""

    decoder: Literal["beam_search", "greedy"] = "beam_search"  # signature `greedy` is always there
    beam_width: int = 4
    length_penalty: float = 0.6  # GNMT alpha; 0 = plain log-probability
    # When beam search is done with a sentence: bound (no live hypothesis can beat the best
    # ended one) | top (also once the most probable one has ended: faster) | none
    beam_stop: Literal["bound", "top", "none"] = "bound"
    # Output at most ratio * input tokens + offset subword tokens (and never more than
    # data.max_target_tokens).
    max_length_ratio: float = 1.5
    max_length_offset: int = 10


def _translation_train() -> TrainConfig:
    return TrainConfig(
        epochs=30,
        batch_size=32,
        learning_rate=2e-3,
        optimizer="adamw",
        weight_decay=1e-4,
        clipnorm=1.0,
        schedule=ScheduleConfig(name="cosine", alpha=0.05, warmup_steps=100),
    )


@dataclasses.dataclass
class TranslationConfig(PipelineConfig):
    data: TranslationDataConfig = dataclasses.field(default_factory=TranslationDataConfig)
    model: TranslationModelConfig = dataclasses.field(default_factory=TranslationModelConfig)
    eval: TranslationEvalConfig = dataclasses.field(default_factory=TranslationEvalConfig)
    serving: TranslationServingConfig = dataclasses.field(default_factory=TranslationServingConfig)
    train: TrainConfig = dataclasses.field(default_factory=_translation_train)
