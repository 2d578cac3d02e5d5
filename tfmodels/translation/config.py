"""The translator's config (`model.*` of the translation pipeline) as a config file writes
it: which model and its sizes. `build_translator` adds what the data decides (vocabulary
sizes, longest sentences)."""

from __future__ import annotations

import dataclasses
from typing import Literal


@dataclasses.dataclass
class TranslatorConfig:
    """`transformer` or `rnn_attention` (`tfmodels.translation`)."""

    name: Literal["transformer", "rnn_attention"] = "transformer"
    # transformer
    layers: int = 2
    # Decoder layers; 0 = as many as `layers`. A deep encoder and a shallow decoder
    # (Kasai et al., 2021) decode faster: each output token runs the decoder alone.
    decoder_layers: int = 0
    width: int = 128
    heads: int = 4
    feedforward: int = 256
    # rnn_attention
    cell: Literal["gru", "lstm"] = "gru"
    attention: Literal["additive", "multiplicative"] = "additive"  # Bahdanau | Luong
    embedding: int = 128
    units: int = 128
    # both
    dropout: float = 0.1
    # One subword embedding for the source, the target and the output projection (logits
    # = hidden @ E^T; Press & Wolf, 2017): needs one vocabulary for both languages, and for
    # rnn_attention `embedding` == `units`.
    tie_embeddings: bool = False
    # The output projection (the largest product of a training step) in float32 whatever
    # the training's precision; false: in the compute precision (bfloat16 under
    # mixed_bfloat16), its logits cast to float32 for the loss and the search.
    float32_logits: bool = True
