"""Speech recognition models: log-mel features, SpecAugment, a CTC recogniser and its
decoders, and the label vocabulary, all Keras layers or graph functions."""

from tfmodels.speech.config import CTCRecognizerConfig
from tfmodels.speech.ctc_decode import ctc_decode
from tfmodels.speech.ctc_model import (
    CTCLoss,
    CTCModel,
    CTCModelSpec,
    build_ctc_model,
    min_ctc_frames,
    output_lengths,
)
from tfmodels.speech.features import LogMelSpectrogram
from tfmodels.speech.spec_augment import SpecAugment, spec_augment_from_config
from tfmodels.speech.tokens import CTCVocabulary, snap_to_lexicon

__all__ = [
    "CTCLoss",
    "CTCModel",
    "CTCModelSpec",
    "CTCRecognizerConfig",
    "CTCVocabulary",
    "LogMelSpectrogram",
    "SpecAugment",
    "build_ctc_model",
    "ctc_decode",
    "min_ctc_frames",
    "output_lengths",
    "snap_to_lexicon",
    "spec_augment_from_config",
]
