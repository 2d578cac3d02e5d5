"""Typed config of the slot-filling pipeline."""

from __future__ import annotations

import dataclasses

from pipelines.core.config import DataConfig, PipelineConfig, ScheduleConfig, TrainConfig
from tfmodels.taggers.config import JointTaggerConfig


@dataclasses.dataclass
class SlotsDataConfig(DataConfig):
    # A folder with train/dev/test splits (`seq.in`, `seq.out`, `label`), relative to the
    # data dir; `atis` is also found as `slots/atis`.
    corpus: str = "slots/sample"
    train: str = "train"
    validation: str = "dev"  # missing folder: hold out `val_fraction` of train
    test: str = "test"  # missing folder (SNIPS): the test report is the validation split
    val_fraction: float = 0.1
    lowercase: bool = True  # ATIS and SNIPS are lower-case: so is what the model sees
    normalise_digits: bool = True  # each digit -> 0 (flight numbers, times, prices)
    word_min_count: int = 1  # rarer training words share the out-of-vocabulary id
    word_dropout: float = 0.05  # training words replaced by OOV: teaches the char encoder
    max_word_chars: int = 20
    # Multi-intent labels (ATIS `atis_flight#atis_airfare`) join single intents with this;
    # `model.multi_intent` learns the single intents, so unseen combinations can be output.
    intent_separator: str = "#"
    shuffle_buffer: int = 20000


@dataclasses.dataclass
class SlotsModelConfig(JointTaggerConfig):
    """The joint tagger (`tfmodels.taggers.JointTaggerConfig`) and how the pipeline trains
    and feeds it."""

    intent_loss_weight: float = 1.0  # joint loss = slot loss + this x intent loss
    # True: one sigmoid per single intent (split on `data.intent_separator`), the output
    # lists every intent above 0.5, most probable first; False: one softmax over the labels
    # as the corpus writes them.
    multi_intent: bool = False
    # A pretrained BERT-style encoder folder (keras-hub preset or Hugging Face layout):
    # each word also gets the frozen encoder's contextual vectors (first WordPiece, a
    # learned mix of its first `pretrained_layers` layers, 0 = all). Empty: off.
    pretrained: str = ""
    pretrained_layers: int = 0
    ensemble: int = 1  # >1: this many taggers trained side by side, averaged when serving


@dataclasses.dataclass
class SlotsServingConfig:
    """Serving options: they may change when a trained run is exported again."""

    # >0: also output the k most probable intents and their probabilities.
    top_intents: int = 0
    # With `model.multi_intent`: every single intent at or above this probability is output.
    intent_threshold: float = 0.5
    # Run the trained LSTM weights in TensorFlow's fused kernel (one op per direction).
    fused_lstm: bool = True


@dataclasses.dataclass
class SlotsConfig(PipelineConfig):
    data: SlotsDataConfig = dataclasses.field(default_factory=SlotsDataConfig)
    model: SlotsModelConfig = dataclasses.field(default_factory=SlotsModelConfig)
    serving: SlotsServingConfig = dataclasses.field(default_factory=SlotsServingConfig)
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            epochs=20,
            batch_size=16,
            learning_rate=3e-3,
            early_stopping_patience=6,
            clipnorm=5.0,
            schedule=ScheduleConfig(name="cosine", alpha=0.05),
        )
    )
