"""Translation pieces without training: corpus errors and filtering, the reversible
subword vocabulary, greedy and beam-search decoding (beam 1 is greedy, nothing after
[END], length bounds), cached decoding against teacher forcing, BLEU against hand counts."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.core.config import load_config
from pipelines.core.textio import DataError
from pipelines.translation.config import TranslationConfig
from pipelines.translation.corpus import read_parallel
from pipelines.translation.metrics import scored, translation_scores
from pipelines.translation.task import TranslationTask
from pipelines.translation.vocabulary import learn_vocabulary
from tfmodels.translation import (
    END_ID,
    PAD_ID,
    START_ID,
    UNK_ID,
    RNNAttentionTranslator,
    SubwordTokenizer,
    TransformerTranslator,
    beam_search,
    greedy_decode,
)

REAL_ISH = [
    "Zwei junge, weiße Männer sind im Freien in der Nähe vieler Büsche.",
    "Ein Mann im blauen Hemd steht auf einer Leiter und putzt ein Fenster!",
    "Drei Leute sitzen in einer Höhle (oder einem Tunnel) um 12:30 Uhr.",
    "„Café“ — 3,5 km entfernt; ein 4-jähriges Mädchen läuft über die Straße?",
    "A man's dog, \"Rex\", isn't 100% white: it's grey & brown.",
    "Eine Frau mit großer Geldbörse geht an einem Tor vorbei.",
]


def _write(folder, name, lines):
    path = folder / name
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def test_files_of_different_lengths_fail_naming_both(tmp_path):
    _write(tmp_path, "train.en", ["a", "b", "c"])
    _write(tmp_path, "train.de", ["x", "y"])
    with pytest.raises(DataError) as err:
        read_parallel(tmp_path, "train", "en", "de")
    message = str(err.value)
    assert str(tmp_path / "train.en") in message and str(tmp_path / "train.de") in message
    assert "3 lines" in message and "has 2" in message


def test_invalid_utf8_and_missing_files_name_the_file(tmp_path):
    _write(tmp_path, "train.en", ["fine", "also fine"])
    (tmp_path / "train.de").write_bytes(b"gut\nnicht \xff gut\n")
    with pytest.raises(DataError, match=r"train\.de:2: not valid UTF-8"):
        read_parallel(tmp_path, "train", "en", "de")
    with pytest.raises(DataError, match=r"val\.en: no such file"):
        read_parallel(tmp_path, "val", "en", "de")


def test_empty_and_over_long_pairs_are_left_out_and_counted(tmp_path):
    corpus = tmp_path / "translation" / "tiny"
    corpus.mkdir(parents=True)
    sources = ["one dog", "", "two cats", "three " * 30, "four birds"]
    targets = ["ein Hund", "nichts", "", "drei", "vier Vögel"]
    for split in ("train", "val", "test"):
        _write(corpus, f"{split}.en", sources)
        _write(corpus, f"{split}.de", targets)
    config = load_config(
        TranslationConfig, overrides=["data.corpus=translation/tiny", "data.max_source_tokens=20"]
    )
    task = TranslationTask(config, tmp_path)
    task.prepare(tmp_path / "state")
    assert task.filtered == {"train": 3, "validation": 3}
    kept_sources, _ = task.ids["train"]
    assert len(kept_sources) == 2
    decoded = task.source_tokenizer.detokenize(
        tf.ragged.constant([s.tolist() for s in kept_sources]).to_tensor()
    )
    assert [t.decode() for t in decoded.numpy()] == ["one dog", "four birds"]


def test_shared_vocabulary_is_learned_from_both_sides_and_kept_as_one_asset(tmp_path):
    """`data.shared_vocab`: one vocabulary, one tokenizer and one asset file; a character
    only the target side has ("ö") is no [UNK] in a source sentence either."""
    corpus = tmp_path / "translation" / "tiny"
    corpus.mkdir(parents=True)
    sources = ["one dog", "two cats", "three birds"]
    targets = ["ein Hund", "zwei Katzen", "drei Vögel"]
    for split in ("train", "val", "test"):
        _write(corpus, f"{split}.en", sources)
        _write(corpus, f"{split}.de", targets)
    unknown = SubwordTokenizer(learn_vocabulary(sources, 100)).tokenize(tf.constant(["Vögel"]))
    assert UNK_ID in unknown.flat_values.numpy()  # what a source-side vocabulary makes of it
    config = load_config(
        TranslationConfig, overrides=["data.corpus=translation/tiny", "data.shared_vocab=true"]
    )
    task = TranslationTask(config, tmp_path)
    task.check_config()
    task.prepare(tmp_path / "state")
    assert task.source_vocabulary == task.target_vocabulary
    assert task.source_tokenizer is task.target_tokenizer
    ids = task.source_tokenizer.tokenize(tf.constant(["three Vögel"]))
    assert UNK_ID not in ids.flat_values.numpy()
    assert task.source_tokenizer.detokenize(ids.to_tensor()).numpy()[0].decode() == "three Vögel"
    files = task.save_assets(tmp_path / "assets")
    assert [f.name for f in files] == ["vocabulary.en-de.txt"]
    kept = TranslationTask(config, None)  # as a re-export: no data
    kept.load_assets(tmp_path / "assets")
    assert kept.source_vocabulary == kept.target_vocabulary == task.source_vocabulary
    assert kept.source_tokenizer is kept.target_tokenizer


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.tie_embeddings=true"], "model.tie_embeddings=true needs data.shared_vocab=true"),
        (
            ["data.shared_vocab=true", "model.tie_embeddings=true", "model.name=rnn_attention"]
            + ["model.embedding=64"],
            r"model.name=rnn_attention needs model.embedding \(64\) == model.units \(128\)",
        ),
        (["data.shared_vocab_size=500"], "data.shared_vocab_size=500 .* data.shared_vocab=true"),
    ],
)
def test_embeddings_that_cannot_tie_fail_naming_the_keys(tmp_path, overrides, message):
    """In `check_config`, which the runner calls before any data is read (there is none
    in `tmp_path`)."""
    from pipelines.core.config import ConfigError

    task = TranslationTask(load_config(TranslationConfig, overrides=overrides), tmp_path)
    with pytest.raises(ConfigError, match=message):
        task.check_config()


def test_vocabulary_round_trip_keeps_the_text():
    """detokenize(tokenize(x)) == x for accents, punctuation, quotes and digits; runs of
    whitespace read as one space; a character never seen is dropped, not the sentence."""
    vocabulary = learn_vocabulary(REAL_ISH * 3, 1000)
    assert vocabulary[:4] == ["[PAD]", "[UNK]", "[START]", "[END]"]
    tokenizer = SubwordTokenizer(vocabulary)
    ids = tokenizer.tokenize(tf.constant(REAL_ISH + ["  Zwei   Männer \t sind ", ""]))
    assert int(tf.reduce_sum(ids.row_lengths())) < sum(map(len, REAL_ISH)) / 2  # not chars
    assert 1 not in ids.flat_values.numpy()  # no [UNK]
    back = [t.decode() for t in tokenizer.detokenize(ids.to_tensor()).numpy()]
    assert back == REAL_ISH + ["Zwei Männer sind", ""]
    unseen = tokenizer.tokenize(tf.constant(["Zwei ♥ Männer"]))
    assert 1 in unseen.flat_values.numpy()
    assert tokenizer.detokenize(unseen.to_tensor()).numpy()[0].decode() == "Zwei Männer"


def test_nothing_after_the_end_token_is_detokenized():
    vocabulary = ["[PAD]", "[UNK]", "[START]", "[END]", "▁ein", "▁Hund", ".", "▁Katze"]
    tokenizer = SubwordTokenizer(vocabulary)
    ids = tf.constant([[4, 5, 6, END_ID, 4, 7, 6], [START_ID, 4, 7, 6, PAD_ID, 5, 6]])
    text = [t.decode() for t in tokenizer.detokenize(ids).numpy()]
    assert text == ["ein Hund.", "ein Katze. Hund."]


def _scripted_step(vocab=8, prefer=5):
    """A step that says token 4 twice, then [END], then (if asked on) `prefer` loudly:
    what the decoders may not let through after [END]."""

    def step(tokens, static, state, index):
        script = tf.constant([4, 4, END_ID] + [prefer] * 20)
        target = tf.gather(script, tf.fill(tf.shape(tokens), index))
        logits = 5.0 * tf.one_hot(target, vocab) + 0.01 * tf.cast(tf.range(vocab), tf.float32)
        return logits, state + 1

    return step


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_decoders_mask_after_end_and_keep_the_length_bound(decoder):
    step = _scripted_step()
    bounds = tf.constant([10, 2, 0])

    def run(bounds):
        if decoder == "greedy":
            return greedy_decode(step, {}, tf.zeros([3]), bounds, START_ID, END_ID)
        return beam_search(step, {}, tf.zeros([3]), bounds, START_ID, END_ID, beam_width=3)

    tokens, scores = run(bounds)
    tokens = tokens.numpy()
    assert tokens[0, :3].tolist() == [4, 4, END_ID] and (tokens[0, 3:] == PAD_ID).all()
    assert tokens[1].tolist()[:2] == [4, END_ID]  # the bound forces [END] second
    assert (tokens[2] == PAD_ID).all() and scores.numpy()[2] == 0.0
    if decoder == "greedy":
        assert tokens.shape[1] == 3  # stops once every sentence has ended


_TINY_TRANSFORMER = {"width": 16, "heads": 2, "feedforward": 32, "max_source": 12, "max_target": 12}


def _tiny_models():
    keras.utils.set_random_seed(3)  # Keras 3 initialisers draw from its own seed generator
    transformer = TransformerTranslator(
        30, 25, layers=2, width=16, heads=2, feedforward=32, max_source=12, max_target=12
    )
    rnn = RNNAttentionTranslator(30, 25, cell="lstm", attention="additive", embedding=8, units=16)
    gru = RNNAttentionTranslator(
        30, 25, cell="gru", attention="multiplicative", embedding=8, units=16
    )
    # A deep encoder and a shallow decoder: the cached step runs its one decoder layer.
    shallow = TransformerTranslator(30, 25, layers=3, decoder_layers=1, **_TINY_TRANSFORMER)
    source = tf.constant([[5, 6, 7, 8, 9, 0], [9, 10, 11, 0, 0, 0], [12, 0, 0, 0, 0, 0]])
    target = tf.constant([[START_ID, 5, 6, 7], [START_ID, 7, 8, 9], [START_ID, 9, 9, 9]])
    for model in (transformer, rnn, gru, shallow):
        model({"source": source, "target": target})
    assert (len(shallow.encoders), len(shallow.decoders)) == (3, 1)
    return (transformer, rnn, gru, shallow), source, target


def _tied_models(source, target):
    """A Transformer and an RNN with one embedding for source, target and output."""
    keras.utils.set_random_seed(4)
    transformer = TransformerTranslator(30, 30, layers=1, tie_embeddings=True, **_TINY_TRANSFORMER)
    rnn = RNNAttentionTranslator(30, 30, embedding=16, units=16, tie_embeddings=True)
    for model in (transformer, rnn):
        model({"source": source, "target": target})
    return transformer, rnn


def test_beam_one_is_greedy_and_cached_steps_are_teacher_forcing():
    models, source, target = _tiny_models()
    bounds = tf.constant([6, 5, 4])
    for model in (*models, *_tied_models(source, target)):
        translate = model.translate
        greedy, greedy_scores = translate(source, bounds, greedy=True, alpha=0.6)
        beam, beam_scores = translate(source, bounds, beam_width=1, alpha=0.6)
        np.testing.assert_array_equal(beam.numpy(), greedy.numpy())
        np.testing.assert_allclose(beam_scores.numpy(), greedy_scores.numpy(), rtol=1e-6)
        assert (tf.reduce_sum(tf.cast(greedy > 0, tf.int32), 1).numpy() <= bounds.numpy()).all()
        # One cached step at a time gives the teacher-forced logits.
        forced = model({"source": source, "target": target}).numpy()
        static, state = model.start(source)
        for i in range(target.shape[1]):
            logits, state = model.step(target[:, i], static, state, tf.constant(i))
            np.testing.assert_allclose(logits.numpy(), forced[:, i], atol=1e-4)
        weights = model.cross_attention(source, target).numpy()
        assert weights.shape == (3, 4, 6)
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-4)
        assert np.abs(weights[2, :, 1:]).max() < 1e-6  # padding gets no attention


def _vocabulary_sized(model, vocab):
    return [v for v in model.trainable_variables if vocab in v.shape]


def _moved_by_row(model, token, inputs):
    """Which logits of each step move when the tied matrix's row of `token` does: (its
    own logit, any other) per step."""
    embeddings = model.shared_embedding.embeddings
    original = embeddings.numpy()
    before = model(inputs).numpy()[0]
    moved = original.copy()
    moved[token] = 1.0
    embeddings.assign(moved)
    after = model(inputs).numpy()[0]
    embeddings.assign(original)
    differs = ~np.isclose(after, before, atol=1e-6)
    return differs[:, token].tolist(), np.delete(differs, token, -1).any(-1).tolist()


def test_tied_embeddings_are_one_matrix_in_and_out():
    """One [vocab, width] variable where the untied model has three matrices and a bias;
    its rows embed the source (every output changes), the target (outputs from that step
    on) and project the output (only that token's logit changes)."""
    inputs = {"source": tf.constant([[13, 14, 0]]), "target": tf.constant([[START_ID, 15, 16]])}
    untied = TransformerTranslator(30, 30, layers=1, **_TINY_TRANSFORMER)
    untied(inputs)
    assert len(_vocabulary_sized(untied, 30)) == 4  # 2 embeddings, output kernel and bias
    for model in _tied_models(inputs["source"], inputs["target"]):
        (matrix,) = _vocabulary_sized(model, 30)
        assert matrix is model.shared_embedding.embeddings and matrix.shape == (30, 16)
        assert not hasattr(model, "logits")
        # In no input: only its own logit moves, at every step (the output projection).
        assert _moved_by_row(model, 20, inputs) == ([True] * 3, [False] * 3)
        assert _moved_by_row(model, 13, inputs)[1] == [True] * 3  # a source token: every step
        # The target's last token: the logits of its own step only.
        assert _moved_by_row(model, 16, inputs)[1] == [False, False, True]


@pytest.mark.parametrize("tied", [False, True])
def test_logits_in_the_compute_precision_are_cast_to_float32(tied):
    """`float32_logits=False` under mixed_bfloat16: the output projection computes in
    bfloat16 (float32 with the default), the logits reach the loss and the search in
    float32 either way, and the float32 variables load into a float32 model unchanged
    (how the recipe exports), whose logits agree up to bfloat16's rounding."""
    from pipelines.core.precision import global_policy

    inputs = {"source": tf.constant([[13, 14, 0]]), "target": tf.constant([[START_ID, 15, 16]])}
    builders = (
        lambda **kw: TransformerTranslator(
            30, 30, layers=1, tie_embeddings=tied, **_TINY_TRANSFORMER, **kw
        ),
        lambda **kw: RNNAttentionTranslator(
            30, 30, embedding=16, units=16, tie_embeddings=tied, **kw
        ),
    )
    for build in builders:
        for float32_logits in (True, False):
            keras.utils.set_random_seed(5)
            with global_policy("mixed_bfloat16"):
                mixed = build(float32_logits=float32_logits)
                logits = mixed(inputs)
            assert logits.dtype == tf.float32
            # Computed in bfloat16: every logit is a bfloat16 value; in float32: few are.
            rounded = tf.cast(tf.cast(logits, tf.bfloat16), tf.float32)
            assert bool(tf.reduce_all(rounded == logits)) is not float32_logits
            static, state = mixed.start(inputs["source"])
            assert (
                mixed.step(inputs["target"][:, 0], static, state, tf.constant(0))[0].dtype
                == tf.float32
            )
            plain = build(float32_logits=float32_logits)
            plain(inputs)
            plain.set_weights(mixed.get_weights())
            np.testing.assert_allclose(plain(inputs).numpy(), logits.numpy(), atol=0.1)


def test_a_model_that_cannot_tie_says_why():
    with pytest.raises(ValueError, match="one vocabulary for both sides"):
        TransformerTranslator(30, 25, tie_embeddings=True)
    with pytest.raises(ValueError, match=r"embedding \(8\) must equal units"):
        RNNAttentionTranslator(30, 30, embedding=8, units=16, tie_embeddings=True)


def test_early_stopping_changes_no_result_it_can_still_change():
    """Beam search stops a sentence once no live hypothesis can beat its best ended one.
    Without a length penalty that is exact; with one, the chosen hypothesis scores at
    least as well as running every hypothesis to the bound."""
    models, source, _ = _tiny_models()
    bounds = tf.constant([9, 7, 5])
    favour_end = tf.one_hot(END_ID, 25) * 2.0  # untrained models: make [END] likely
    for model in models:

        def step(tokens, static, state, index, model=model):
            logits, state = model.step(tokens, static, state, index)
            return logits + favour_end, state

        def run(alpha, stop, model=model, step=step):
            static, state = model.start(source)
            return beam_search(
                step, static, state, bounds, START_ID, END_ID, beam_width=4, alpha=alpha, stop=stop
            )

        (early, early_scores), (full, full_scores) = run(0.0, "bound"), run(0.0, "none")
        width = early.shape[1]
        assert width < full.shape[1]  # it did stop early
        np.testing.assert_array_equal(early.numpy(), full.numpy()[:, :width])
        assert (full.numpy()[:, width:] == PAD_ID).all()
        np.testing.assert_allclose(early_scores.numpy(), full_scores.numpy(), rtol=1e-6)
        early_scores, full_scores = run(0.6, "bound")[1], run(0.6, "none")[1]
        assert (early_scores.numpy() >= full_scores.numpy() - 1e-5).all()
        # OpenNMT-py's rule, done once the most probable hypothesis has ended: without a
        # length penalty the same, with one it stops no later.
        top, top_scores = run(0.0, "top")
        np.testing.assert_array_equal(top.numpy(), early.numpy())
        assert run(0.6, "top")[0].shape[1] <= run(0.6, "bound")[0].shape[1]


def test_bleu_and_chrf_are_sacrebleus_on_raw_text():
    """Against BLEU counted by hand: 13a tokenization splits the final period off (7
    tokens a side, no brevity penalty), case counts ("The" is not "the"): clipped n-gram
    precisions 6/7, 4/6, 2/5, 1/4."""
    refs, hyps = ["The cat sat on a mat."], ["The cat sat on the mat."]
    hand = 100 * math.exp(sum(map(math.log, (6 / 7, 4 / 6, 2 / 5, 1 / 4))) / 4)
    scores = translation_scores(refs, hyps)
    assert scores["bleu"] == pytest.approx(hand, abs=1e-9)
    assert 0 < scores["chrf"] < 100
    assert translation_scores(refs, refs) == pytest.approx({"bleu": 100.0, "chrf": 100.0})
    signatures = {k: s for k, (_, s) in scored(refs, hyps).items()}
    assert signatures["bleu"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|")
    assert signatures["chrf"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|")
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        translation_scores(["a", "b"], ["a"])


def test_unknown_beam_stop_fails_before_any_data_is_read(tmp_path):
    from pipelines.core.config import ConfigError
    from pipelines.core.runner import load_task_config, run_pipeline

    with pytest.raises(ConfigError, match="serving.beam_stop"):
        config = load_task_config("translation", None, ["serving.beam_stop=sideways"])
        run_pipeline("translation", config, data_dir=tmp_path, workdir=tmp_path / "w")
