"""Recurrent sequence taggers (segmentation, slot filling) and their constrained decoding."""

from tfmodels.taggers.config import CharTaggerConfig, JointTaggerConfig
from tfmodels.taggers.recurrent_tagger import EmbeddingSpec, TaggerSpec, build_recurrent_tagger
from tfmodels.taggers.viterbi import (
    ConstrainedViterbi,
    bio_transitions,
    bmes_transitions,
)

__all__ = [
    "CharTaggerConfig",
    "JointTaggerConfig",
    "ConstrainedViterbi",
    "EmbeddingSpec",
    "TaggerSpec",
    "bio_transitions",
    "bmes_transitions",
    "build_recurrent_tagger",
]
