"""The joint tagger's parts: in-graph features (normalisation, OOV, empty input), the
character encoder, masked attention pooling, and the model's two heads."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from pipelines.slots.features import OOV_ID, PAD_ID, UtteranceFeatures, vocabulary_tokens
from tfmodels.taggers.char_encoder import CharCNN
from tfmodels.taggers.joint_tagger import (
    AttentionPooling,
    CharEncoderSpec,
    JointTaggerSpec,
    build_joint_tagger,
)
from tfmodels.taggers.recurrent_tagger import EmbeddingSpec, TaggerSpec

WORDS = ["dallas", "denver", "flight", "from", "to", "000"]
CHARS = sorted(set("".join(WORDS)))


def features(**kwargs) -> UtteranceFeatures:
    return UtteranceFeatures(WORDS, CHARS, max_word_chars=5, **kwargs)


def test_word_and_char_ids_with_normalisation_and_oov():
    f = features()
    text = tf.constant(["Flight from DALLAS to 123", "to Albuquerque"])
    tokens = f.tokenize(text)
    assert tokens.to_list()[0] == [b"Flight", b"from", b"DALLAS", b"to", b"123"]
    out = f(tokens)
    words, chars = out["words"].numpy(), out["chars"].numpy()
    vocab = f.word_lookup.get_vocabulary()
    assert [vocab[i] for i in words[0]] == ["flight", "from", "dallas", "to", "000"]
    assert words[1].tolist() == [vocab.index("to"), OOV_ID, PAD_ID, PAD_ID, PAD_ID]
    assert chars.shape == (2, 5, 5)  # words truncated to max_word_chars
    char_vocab = f.char_lookup.get_vocabulary()
    # "albuquerque" -> a, l, b (unseen: OOV), u (unseen), q (unseen)
    assert chars[1, 1].tolist() == [
        char_vocab.index("a"),
        char_vocab.index("l"),
        OOV_ID,
        OOV_ID,
        OOV_ID,
    ]
    assert (chars[1, 2:] == PAD_ID).all()


def test_case_and_digits_kept_when_configured_off():
    f = features(lowercase=False, digits=False)
    out = f(f.tokenize(tf.constant(["Dallas 123"])))
    assert out["words"].numpy().tolist() == [[OOV_ID, OOV_ID]]


def test_empty_inputs_still_give_one_position():
    f = features()
    out = f(f.tokenize(tf.constant(["", "   "])))
    assert out["words"].shape == (2, 1) and out["chars"].shape == (2, 1, 1)
    assert (out["words"].numpy() == PAD_ID).all()
    assert "chars" not in features(use_chars=False)(f.tokenize(tf.constant([""])))


def test_vocabulary_tokens_match_the_graph():
    assert vocabulary_tokens(["Fly  to\tDallas 42 "], True, True) == [["fly", "to", "dallas", "00"]]


def test_char_cnn_ignores_padding():
    layer = CharCNN(vocab_size=10, dim=4, filters=3, kernel_sizes=(2, 3))
    chars = np.array([[[2, 3, 0, 0], [0, 0, 0, 0]]], np.int32)
    out = layer(chars).numpy()
    assert out.shape == (1, 2, 6)
    assert (out[0, 1] == 0).all()  # a padding word encodes to zeros
    more_padding = np.array([[[2, 3, 0, 0, 0, 0]]], np.int32)
    np.testing.assert_allclose(layer(more_padding).numpy()[0, 0], out[0, 0], atol=1e-6)


def test_attention_pooling_masks_and_survives_empty_rows():
    layer = AttentionPooling(8)
    states = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    mask = np.array([[True, False, False], [False, False, False]])
    out = layer(states, mask=mask).numpy()
    np.testing.assert_allclose(out[0], states[0, 0], rtol=1e-5)  # only position 0 counts
    assert np.isfinite(out[1]).all()


@pytest.mark.parametrize("intent_context", [0, 4])
def test_joint_tagger_heads_and_padding_independence(intent_context):
    spec = JointTaggerSpec(
        TaggerSpec(
            num_tags=5,
            embeddings=[EmbeddingSpec("word", 20, 8, ("words",), 1.0)],
            layers=2,
            units=6,
            dropout=0.0,
            embedding_dropout=0.0,
        ),
        num_intents=3,
        chars=CharEncoderSpec(vocab_size=12, dim=4, filters=5),
        intent_context=intent_context,
    )
    model = build_joint_tagger(spec)
    words = np.array([[3, 4, 5]], np.int32)
    chars = np.array([[[2, 3], [4, 0], [5, 6]]], np.int32)
    out = model({"words": words, "chars": chars})
    assert out["slots"].shape == (1, 3, 5) and out["intent"].shape == (1, 3)
    padded = model(
        {"words": np.pad(words, [[0, 0], [0, 2]]), "chars": np.pad(chars, [[0, 0], [0, 2], [0, 1]])}
    )
    np.testing.assert_allclose(padded["slots"].numpy()[:, :3], out["slots"].numpy(), atol=1e-5)
    np.testing.assert_allclose(padded["intent"].numpy(), out["intent"].numpy(), atol=1e-5)
    assert ("intent_context" in [layer.name for layer in model.layers]) == bool(intent_context)


def test_fused_inference_model_matches_the_trained_one():
    from tfmodels.taggers.fused_lstm import with_fused_lstms

    spec = JointTaggerSpec(
        TaggerSpec(
            num_tags=4,
            embeddings=[EmbeddingSpec("word", 20, 8, ("words",), 1.0)],
            layers=2,
            units=6,
        ),
        num_intents=2,
        chars=CharEncoderSpec(vocab_size=12, dim=4, filters=5),
        intent_context=3,
    )
    model = build_joint_tagger(spec)
    inputs = {
        "words": np.array([[3, 4, 5, 0], [6, 0, 0, 0]], np.int32),
        "chars": np.array([[[2, 3], [4, 0], [5, 6], [0, 0]]] * 2, np.int32),
    }
    want, got = model(inputs), with_fused_lstms(model)(inputs)
    np.testing.assert_allclose(got["intent"].numpy(), want["intent"].numpy(), atol=1e-5)
    np.testing.assert_allclose(got["slots"].numpy()[0, :3], want["slots"].numpy()[0, :3], atol=1e-5)
    np.testing.assert_allclose(got["slots"].numpy()[1, :1], want["slots"].numpy()[1, :1], atol=1e-5)


@pytest.mark.parametrize("crf", [False, True])
def test_ensemble_members_differ_and_average_as_documented(crf):
    from tfmodels.taggers.fused_lstm import FusedBiLSTM, with_fused_lstms
    from tfmodels.taggers.joint_tagger import average_members, build_joint_tagger_ensemble

    spec = JointTaggerSpec(
        TaggerSpec(
            num_tags=4,
            embeddings=[EmbeddingSpec("word", 20, 8, ("words",), 1.0)],
            layers=1,
            units=6,
        ),
        num_intents=3,
        chars=CharEncoderSpec(vocab_size=12, dim=4, filters=5),
        crf=crf,
    )
    model = build_joint_tagger_ensemble(spec, members=2)
    assert sorted(model.output) == ["intent_0", "intent_1", "slots_0", "slots_1"]
    inputs = {
        "words": np.array([[3, 4, 5, 0]], np.int32),
        "chars": np.array([[[2, 3], [4, 0], [5, 6], [0, 0]]], np.int32),
    }
    out = model(inputs)
    assert not np.allclose(out["slots_0"].numpy(), out["slots_1"].numpy())  # own weights

    # The fused inference copy reaches into the members and computes the same.
    fused = with_fused_lstms(model)
    assert any(
        isinstance(layer, FusedBiLSTM)
        for member in fused.layers
        if hasattr(member, "layers")
        for layer in member.layers
    )
    fused_out = fused(inputs)
    np.testing.assert_allclose(
        fused_out["slots_1"].numpy()[:, :3], out["slots_1"].numpy()[:, :3], atol=1e-5
    )

    rng = np.random.default_rng(0)
    transitions = (
        [tf.constant(rng.normal(size=(5, 5)), tf.float32) for _ in range(2)] if crf else None
    )
    keys = [("slots_0", "intent_0"), ("slots_1", "intent_1")]
    slots, intent, crf_transitions = average_members(out, keys, transitions=transitions)
    probs = [tf.nn.softmax(out[f"intent_{i}"]).numpy() for i in range(2)]
    np.testing.assert_allclose(tf.nn.softmax(intent).numpy(), (probs[0] + probs[1]) / 2, atol=1e-5)
    if crf:
        np.testing.assert_allclose(slots.numpy(), (out["slots_0"] + out["slots_1"]) / 2, atol=1e-5)
        np.testing.assert_allclose(
            crf_transitions.numpy(), (transitions[0] + transitions[1]).numpy() / 2, atol=1e-6
        )
    else:
        logp = [tf.nn.log_softmax(out[f"slots_{i}"]).numpy() for i in range(2)]
        np.testing.assert_allclose(slots.numpy(), (logp[0] + logp[1]) / 2, atol=1e-5)
        assert crf_transitions is None

    # One sigmoid per intent (multi-intent): the averaged probability of each intent.
    _, multi, _ = average_members(out, keys, multi_label=True)
    sigmoids = [tf.sigmoid(out[f"intent_{i}"]).numpy() for i in range(2)]
    np.testing.assert_allclose(
        tf.sigmoid(multi).numpy(), (sigmoids[0] + sigmoids[1]) / 2, atol=1e-5
    )
