"""The segmentation export: raw text in, words out. Clauses are tagged in groups of similar
length, Viterbi-decoded to valid B/M/E/S sequences and the words joined in the graph."""

from __future__ import annotations

import keras
import tensorflow as tf

from pipelines.core.task import DEFAULT_SIGNATURE, Serving
from pipelines.segmentation.config import SegmentationConfig
from pipelines.segmentation.reader import CLAUSE_END
from tfmodels.taggers import ConstrainedViterbi, bmes_transitions
from tfmodels.taggers.fused_lstm import with_fused_lstms
from tfmodels.taggers.viterbi import tag_by_length
from tfmodels.text import chinese
from tfmodels.text.chinese import SegmentationPreprocessor, split_units, words_from_tags


def signatures(
    config: SegmentationConfig, model: keras.Model, preprocessor: SegmentationPreprocessor
) -> dict[str, Serving]:
    """`serving_default`: `text` -> `words` (padded with "") and `segmented` (the words
    joined by `serving.separator`)."""
    decoder = ConstrainedViterbi(bmes_transitions(), name="bmes_viterbi")
    normalise = config.data.normalise
    by_clause = config.data.split_clauses
    separator = config.serving.separator

    # The same weights, one fused kernel per direction (`serving.fused_lstm`).
    tagger = with_fused_lstms(model) if config.serving.fused_lstm else model

    def tag(rows: tf.RaggedTensor) -> tf.Tensor:
        return decoder(tagger(preprocessor(rows), training=False), rows.row_lengths())

    def serve(text: tf.Tensor) -> dict[str, tf.Tensor]:
        units, norm = split_units(text, normalise)
        rows = chinese.split_clauses(norm, sorted(CLAUSE_END)) if by_clause else norm
        tags = tag_by_length(rows, tag)
        words = words_from_tags(units, units.with_flat_values(tags.flat_values))
        return {
            "words": words.to_tensor(""),
            "segmented": tf.strings.reduce_join(words, axis=1, separator=separator),
        }

    return {
        DEFAULT_SIGNATURE: Serving(
            serve, {"text": tf.TensorSpec([None], tf.string)}, resources=[tagger, preprocessor]
        )
    }
