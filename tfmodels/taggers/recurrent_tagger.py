"""A stacked bidirectional recurrent tagger: embeddings of one or more id features (shared
tables allowed), optional dense features, `layers` x Bidirectional(LSTM|GRU), tag logits.

One model family for every sequence-labelling pipeline: word segmentation tags characters
B/M/E/S, slot filling tags words BIO. Position 0 of the first id feature's vocabulary is
padding, and defines the mask.
"""

from __future__ import annotations

import dataclasses

import keras

from tfmodels.taggers.config import Cell, CharTaggerConfig


@dataclasses.dataclass
class EmbeddingSpec:
    """One embedding table, looked up by each input named in `inputs`."""

    name: str
    vocab_size: int
    dim: int
    inputs: tuple[str, ...]
    init_stddev: float = 0.0  # > 0: normal(0, stddev) start (learns faster); 0: Keras default


@dataclasses.dataclass
class TaggerSpec:
    num_tags: int
    embeddings: list[EmbeddingSpec]
    dense_inputs: dict[str, int] = dataclasses.field(default_factory=dict)  # name -> width
    layers: int = 2
    units: int = 128
    cell: Cell = "lstm"
    dropout: float = 0.2
    recurrent_dropout: float = 0.0
    embedding_dropout: float = 0.1
    projection: int = 0  # >0: a linear projection of the features before the first RNN

    @classmethod
    def from_char_config(
        cls,
        config: CharTaggerConfig,
        num_tags: int,
        char_vocab_size: int,
        bigram_vocab_size: int,
        dense_inputs: dict[str, int] | None = None,
    ) -> TaggerSpec:
        """A character tagger's spec: the `chars` input's embedding and, with
        `config.use_bigrams`, one bigram table shared by `bigram_next` and `bigram_prev`."""
        embeddings = [EmbeddingSpec("char", char_vocab_size, config.char_dim, ("chars",))]
        if config.use_bigrams:
            embeddings.append(
                EmbeddingSpec(
                    "bigram", bigram_vocab_size, config.bigram_dim, ("bigram_next", "bigram_prev")
                )
            )
        return cls(
            num_tags=num_tags,
            embeddings=embeddings,
            dense_inputs=dict(dense_inputs or {}),
            layers=config.layers,
            units=config.units,
            cell=config.cell,
            dropout=config.dropout,
            embedding_dropout=config.embedding_dropout,
            projection=config.projection,
        )


def _rnn(cell: str, units: int, dropout: float, recurrent_dropout: float, name: str):
    if cell == "lstm":
        layer = keras.layers.LSTM
    elif cell == "gru":
        layer = keras.layers.GRU
    else:
        raise ValueError(f"model.cell: unknown cell '{cell}' (lstm, gru)")
    return keras.layers.Bidirectional(
        layer(units, return_sequences=True, dropout=dropout, recurrent_dropout=recurrent_dropout),
        name=name,
    )


def tagger_inputs(spec: TaggerSpec) -> dict[str, keras.KerasTensor]:
    inputs = {}
    for emb in spec.embeddings:
        for name in emb.inputs:
            inputs[name] = keras.Input(shape=(None,), dtype="int32", name=name)
    for name, width in spec.dense_inputs.items():
        inputs[name] = keras.Input(shape=(None, width), dtype="float32", name=name)
    return inputs


def encode_sequence(spec: TaggerSpec, inputs: dict[str, keras.KerasTensor], extra=()):
    """Embeddings + dense features (+ `extra` per-position tensors) -> BiRNN states, mask."""
    first = spec.embeddings[0].inputs[0]
    mask = keras.ops.not_equal(inputs[first], 0)
    parts = []
    for emb in spec.embeddings:
        init = (
            keras.initializers.RandomNormal(stddev=emb.init_stddev)
            if emb.init_stddev > 0
            else "uniform"
        )
        table = keras.layers.Embedding(
            emb.vocab_size, emb.dim, embeddings_initializer=init, name=f"{emb.name}_embedding"
        )
        parts += [table(inputs[name]) for name in emb.inputs]
    parts += [inputs[name] for name in spec.dense_inputs]
    parts += list(extra)
    x = keras.layers.Concatenate(name="features")(parts) if len(parts) > 1 else parts[0]
    x = keras.layers.Dropout(spec.embedding_dropout)(x)
    if spec.projection:
        # Wide embeddings, narrow recurrent input: the projection is one batched matmul,
        # where the RNN would pay for the width at every time step.
        x = keras.layers.Dense(spec.projection, name="projection")(x)
    for i in range(spec.layers):
        x = _rnn(spec.cell, spec.units, spec.dropout, spec.recurrent_dropout, f"birnn_{i}")(
            x, mask=mask
        )
    x = keras.layers.Dropout(spec.dropout)(x)
    return x, mask


def build_recurrent_tagger(spec: TaggerSpec, name: str = "recurrent_tagger") -> keras.Model:
    """Model from a dict of `[B, T]` id inputs (and `[B, T, W]` dense ones) to tag logits."""
    inputs = tagger_inputs(spec)
    states, _ = encode_sequence(spec, inputs)
    logits = keras.layers.Dense(spec.num_tags, dtype="float32", name="tag_logits")(states)
    return keras.Model(inputs, logits, name=name)
