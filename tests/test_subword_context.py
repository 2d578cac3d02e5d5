"""Pretrained subword encoder features: WordPiece ids made in the graph, each word's
first-piece vectors mixed over the encoder's layers, and the encoder loaded from a preset."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from helpers import tiny_bert_preset

from pipelines.core.config import ConfigError
from pipelines.slots.features import SubwordPieces, UtteranceFeatures
from pipelines.slots.pretrained import load_subword_encoder
from tfmodels.taggers.subword_context import LayerMix, SubwordEncoderLayers

VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "fly",
    "to",
    "bal",
    "##ti",
    "##more",
    "o",
    "'",
    "clock",
]


def pieces_of(texts, max_pieces=512, width=None):
    layer = SubwordPieces(VOCAB, max_pieces=max_pieces)
    tokens = tf.strings.split(tf.constant(texts))
    width = tokens.bounding_shape()[1] if width is None else width
    out = layer(tokens, tf.constant(width, tf.int64))
    return out["pieces"].numpy(), out["first_piece"].numpy()


def test_pieces_follow_cls_and_end_with_sep_and_first_piece_points_at_each_word():
    pieces, first = pieces_of(["Fly to BALTIMORE", "o'clock zzz"])
    names = [[VOCAB[i] for i in row if i] for row in pieces]
    assert names[0] == ["[CLS]", "fly", "to", "bal", "##ti", "##more", "[SEP]"]
    # Punctuation splits inside a word, as BERT's tokenizer does; unknown words -> [UNK].
    assert names[1] == ["[CLS]", "o", "'", "clock", "[UNK]", "[SEP]"]
    assert first.tolist() == [[1, 2, 3], [1, 4, 0]]


def test_empty_utterance_gives_cls_sep_and_padded_first_piece():
    pieces, first = pieces_of(["", "fly"], width=1)
    assert [[VOCAB[i] for i in row if i] for row in pieces] == [
        ["[CLS]", "[SEP]"],
        ["[CLS]", "fly", "[SEP]"],
    ]
    assert first.tolist() == [[0], [1]]


def test_long_utterance_is_cut_to_max_pieces_and_late_words_point_inside():
    pieces, first = pieces_of(["fly to baltimore to baltimore"], max_pieces=6)
    assert pieces.shape == (1, 6)
    assert first.max() <= 5
    assert first.tolist() == [[1, 2, 3, 5, 5]]


def test_first_piece_has_the_word_features_width():
    features = UtteranceFeatures(["fly", "to"], list("flytoa"))
    tokens = features.tokenize(tf.constant(["fly to baltimore", ""]))
    words = features(tokens)["words"]
    first = SubwordPieces(VOCAB)(tokens, tf.shape(words)[1])["first_piece"]
    assert first.shape == words.shape


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    return tiny_bert_preset(tmp_path_factory.mktemp("bert"), ["fly", "to", "from"], layers=3)


def test_load_cuts_the_encoder_to_the_first_layers_and_reads_the_vocabulary(preset):
    loaded = load_subword_encoder(preset, layers=2)
    assert len(loaded.encoder.outputs) == 2
    assert loaded.vocabulary[:4] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    assert "fly" in loaded.vocabulary and loaded.lowercase
    assert len(load_subword_encoder(preset).encoder.outputs) == 3


def test_load_errors_name_the_setting(preset, tmp_path):
    with pytest.raises(ConfigError, match="model.pretrained: .* is not a folder"):
        load_subword_encoder(tmp_path / "missing")
    with pytest.raises(ConfigError, match="model.pretrained_layers: 4 is not within 0..3"):
        load_subword_encoder(preset, layers=4)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_subword_encoder(tmp_path)


def test_encoder_layers_are_each_layers_output_at_each_words_first_piece(preset):
    loaded = load_subword_encoder(preset)
    encoder_layers = SubwordEncoderLayers(loaded.encoder)
    pieces = tf.constant([[2, 5, 6, 7, 3, 0], [2, 6, 3, 0, 0, 0]])
    first = tf.constant([[1, 2, 3], [1, 0, 0]])
    out = encoder_layers(pieces, first).numpy()
    assert out.shape == (2, 3, 3, 16)
    layers = loaded.encoder(
        {
            "token_ids": pieces,
            "segment_ids": tf.zeros_like(pieces),
            "padding_mask": tf.cast(pieces != 0, tf.int32),
        }
    )
    for i, layer in enumerate(layers):
        expected = np.take_along_axis(layer.numpy(), first.numpy()[..., None], axis=1)
        np.testing.assert_allclose(out[:, :, i], expected, rtol=1e-5, atol=1e-5)
    assert not encoder_layers.trainable_weights  # frozen: vectors can be computed once


def test_layer_mix_starts_as_the_mean_and_learns_its_weights():
    layers = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype("float32")
    mix = LayerMix()
    np.testing.assert_allclose(mix(layers).numpy(), layers.mean(axis=2), rtol=1e-5, atol=1e-6)
    mix.layer_logits.assign([0.0, 0.0, 0.0, 50.0])  # all weight on the last layer
    mix.scale.assign(2.0)
    np.testing.assert_allclose(mix(layers).numpy(), 2 * layers[:, :, 3], rtol=1e-4, atol=1e-4)
    assert sorted(w.name for w in mix.trainable_weights) == ["layer_logits", "scale"]
