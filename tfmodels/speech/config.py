"""The recogniser's config (`model.*` of the speech pipeline) as a config file writes it:
log-mel features, SpecAugment and the CTC model's sizes. `CTCModelSpec.from_config` adds
what the data decides (the label count)."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass
class CTCRecognizerConfig:
    """Log-mel features, SpecAugment and the CTC recogniser (`tfmodels.speech`)."""

    n_mels: int = 40
    frame_ms: float = 25.0
    step_ms: float = 10.0
    conv: Literal["1d", "2d"] = "1d"  # 1d: over time, mel bins as channels; 2d: time x mels
    conv_filters: list[int] = dataclasses.field(default_factory=lambda: [128])
    conv_kernel: int = 5
    time_strides: list[int] = dataclasses.field(default_factory=lambda: [2])
    freq_strides: list[int] = dataclasses.field(default_factory=lambda: [2])  # 2d only
    projection: int = 0
    cell: Literal["gru", "lstm"] = "gru"
    layers: int = 2
    units: int = 128
    dropout: float = 0.1
    # SpecAugment (training only); 0 masks turn a kind off.
    freq_masks: int = 2
    freq_width: int = 8
    time_masks: int = 2
    time_width: int = 20
