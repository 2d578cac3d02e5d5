"""The pieces of the segmentation pipeline, each against known answers."""

import math

import numpy as np
import pytest
import tensorflow as tf

from pipelines.core.textio import DataError
from pipelines.segmentation.lexicon import load_lexicon
from pipelines.segmentation.metrics import word_prf
from pipelines.segmentation.reader import read_segmented, split_clauses
from tfmodels.taggers import ConstrainedViterbi, bmes_transitions
from tfmodels.taggers.viterbi import tag_by_length
from tfmodels.text.chinese import (
    SegmentationPreprocessor,
    bmes_tags,
    split_units,
    words_from_tags,
)


def _rows(ragged):
    return [[u.decode() for u in row] for row in ragged.to_list()]


def test_units_with_normalisation_keep_original_text():
    units, norm = split_units(tf.constant(["2001年 ＡＢＣ和abc，55.6亿 25％", ""]), True)
    assert _rows(units) == [["2001", "年", "ＡＢＣ", "和", "abc", "，", "55.6", "亿", "25％"], []]
    assert _rows(norm) == [["0", "年", "X", "和", "X", ",", "0", "亿", "0"], []]


def test_units_without_normalisation_are_characters():
    units, norm = split_units(tf.constant(["ab 1\u3000中"]), False)
    assert _rows(units) == [["a", "b", "1", "中"]]
    assert _rows(norm) == _rows(units)


def test_bmes_tags_of_words():
    words = tf.ragged.constant([["中"], ["中", "国"], ["中", "华", "民", "族"]])
    assert bmes_tags(words).to_list() == [[3], [0, 2], [0, 1, 1, 2]]


def test_words_from_tags_joins_units():
    units = tf.ragged.constant([["中", "国", "人", "0", "年"], [], ["好"]])
    tags = tf.ragged.constant([[0, 2, 3, 0, 2], [], [3]])
    assert _rows(words_from_tags(units, tags)) == [["中国", "人", "0年"], [], ["好"]]


def test_bmes_mask_forbids_invalid_sequences():
    mask = bmes_transitions()
    b, m, e, s, edge = range(5)
    assert mask[edge, b] and mask[edge, s] and not mask[edge, m] and not mask[edge, e]
    assert not mask[e, m] and not mask[s, e] and not mask[b, b] and not mask[b, s]
    assert mask[b, e] and mask[m, m] and mask[e, edge] and not mask[b, edge]


def test_viterbi_repairs_greedy_invalid_tags():
    # Greedy argmax would read E, M, B (invalid everywhere); constrained decoding may not.
    logits = np.log(
        np.array(
            [[[0.1, 0.1, 0.7, 0.1], [0.1, 0.6, 0.2, 0.1], [0.5, 0.1, 0.1, 0.3]]], dtype=np.float32
        )
    )
    path = ConstrainedViterbi(bmes_transitions())(logits, np.array([3])).numpy()[0].tolist()
    mask = bmes_transitions()
    sequence = [4, *path, 4]
    assert all(mask[a, b] for a, b in zip(sequence[:-1], sequence[1:], strict=True))


def test_tag_by_length_tags_each_group_padded_to_its_own_longest_row():
    """Rows of every length group (and empty ones) come back in input order with their
    own tags; each was tagged in a batch padded only to its group's longest row."""
    lengths = [0, 3, 130, 7, 1, 40, 0, 12, 5, 100, 2, 64, 17, 4]
    boundaries = (4, 8, 12, 16, 24, 32, 48, 64, 96, 128)
    rng = np.random.default_rng(0)
    values = [rng.integers(0, 50, n).tolist() for n in lengths]
    rows = tf.ragged.constant(values, dtype=tf.int64, ragged_rank=1)

    def tag(batch: tf.RaggedTensor) -> tf.Tensor:  # the value mod 4, and the padded width
        dense = batch.to_tensor(0)
        return tf.cast(dense % 4 * 1000 + tf.cast(tf.shape(dense)[1], tf.int64), tf.int32)

    tagged = tf.function(lambda r: tag_by_length(r, tag, boundaries))(rows)
    assert tagged.row_lengths().numpy().tolist() == lengths
    group = np.searchsorted(boundaries, lengths, side="left")
    for i in range(len(lengths)):
        widest = max(m for m, g in zip(lengths, group, strict=True) if g == group[i])
        assert tagged[i].numpy().tolist() == [v % 4 * 1000 + widest for v in values[i]]
    empty = tf.function(lambda r: tag_by_length(r, tag, boundaries))(rows[:0])
    assert empty.shape[0] == 0


def test_word_prf_counts_spans():
    gold = [["中国", "人民"], ["我", "爱", "你"]]
    pred = [["中国", "人", "民"], ["我", "爱你"]]
    scores = word_prf(gold, pred)
    assert scores["correct"] == 2 and scores["gold"] == 5 and scores["predicted"] == 5
    assert scores["f1"] == pytest.approx(0.4)
    assert word_prf(gold, gold)["f1"] == 1.0


def test_word_prf_refuses_different_text():
    with pytest.raises(ValueError, match="sentence 1"):
        word_prf([["中国"]], [["中", "华"]])


def test_reader_skips_blank_lines(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("中国  人民\n\n  \n我  爱  你\n", encoding="utf-8")
    assert read_segmented(path) == [["中国", "人民"], ["我", "爱", "你"]]


def test_reader_names_file_and_line_of_bad_utf8(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes("中国  人民\n我们\n".encode() + "坏".encode("gbk") + b"\n")
    with pytest.raises(DataError, match=r"bad\.txt:3: not valid UTF-8"):
        read_segmented(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="nope.txt: no such file"):
        read_segmented(tmp_path / "nope.txt")


def test_split_clauses_cuts_after_punctuation():
    assert split_clauses(["我", "来", "，", "他", "走", "。"]) == [
        ["我", "来", "，"],
        ["他", "走", "。"],
    ]


def test_preprocessor_lexicon_and_bigram_features():
    pre = SegmentationPreprocessor(
        ["中", "国", "人"], ["中国", "<s>中"], ["中国", "中国人"], max_word=3
    )
    _, norm = split_units(tf.constant(["中国人", ""]), True)
    features = pre(norm)
    assert features["chars"].numpy().tolist() == [[2, 3, 4], [0, 0, 0]]
    bigram_next = features["bigram_next"].numpy()[0].tolist()
    assert bigram_next[0] == 2 and bigram_next[1] == 1  # "中国" known, "国人" OOV
    lex = features["lexicon"].numpy()[0]  # columns: begins n=2,3 then ends n=2,3
    assert lex[:, 0].tolist() == [1, 0, 0]  # 中国 begins at 0
    assert lex[:, 1].tolist() == [1, 0, 0]  # 中国人 begins at 0
    assert lex[:, 2].tolist() == [0, 1, 0]  # 中国 ends at 1
    assert lex[:, 3].tolist() == [0, 0, 1]  # 中国人 ends at 2


def test_user_lexicon_file(tmp_path):
    (tmp_path / "words.txt").write_text(
        "中国\n北京大学 100\n太长的一个词 5\nabc\n", encoding="utf-8"
    )
    assert load_lexicon("words.txt", tmp_path, 4) == {
        "中国": 1.0,
        "北京大学": pytest.approx(math.log10(101) / 5),
    }
    (tmp_path / "bad.txt").write_text("中国 many\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.txt:1: expected"):
        load_lexicon("bad.txt", tmp_path, 4)


def test_jieba_lexicon_is_bundled():
    words = load_lexicon("jieba", None, 4)
    assert len(words) > 100_000 and words["中国"] == 1.0  # frequent: full weight
    assert all(2 <= len(w) <= 4 and 0 < v <= 1 for w, v in words.items())
    assert min(words.values()) < 0.5  # rare words weigh less
