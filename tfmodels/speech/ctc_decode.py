"""CTC decoding in the graph: greedy (best path) or beam search, with a confidence.

Both run `keras.ops.ctc_decode` (TensorFlow's CTC decoder kernels, which TF Serving runs)
on log-softmax scores, so the greedy decoder's score is the best path's log-probability.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfmodels.speech.ctc_model import BLANK

STRATEGIES = ("greedy", "beam_search")
CONFIDENCES = ("sequence", "frame")


def ctc_decode(
    logits, lengths, strategy: str = "greedy", beam_width: int = 16, confidence: str = "sequence"
) -> dict[str, tf.Tensor]:
    """Logits `[B, T, C]` (blank id 0) and valid frames `[B]` -> the best labelling.

    Returns a dict of
    - `ids` `[B, L]` int32: label ids 1..C-1, blanks and repeats collapsed, padded with -1
      (`L` the longest, possibly 0);
    - `lengths` `[B]` int32: labels per row;
    - `log_probability` `[B]` float32: greedy, the log-probability of the best path (one
      alignment); beam search, that of the labelling summed over the alignments the beam
      kept (a lower bound of its probability);
    - `confidence` `[B]` float32 in [0, 1]: with `confidence="sequence"`,
      `exp(log_probability)`; with `"frame"`, the mean over valid frames of the largest
      frame posterior (length-independent; blank frames count too). 0 for rows with no
      valid frame.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"ctc_decode: unknown strategy '{strategy}' ({', '.join(STRATEGIES)})")
    if confidence not in CONFIDENCES:
        raise ValueError(
            f"ctc_decode: unknown confidence '{confidence}' ({', '.join(CONFIDENCES)})"
        )
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    lengths = tf.cast(lengths, tf.int32)
    decoded, scores = keras.ops.ctc_decode(
        log_probs, lengths, strategy=strategy, beam_width=beam_width, top_paths=1, mask_index=BLANK
    )
    ids = decoded[0]
    label_lengths = tf.reduce_sum(tf.cast(ids >= 0, tf.int32), axis=1)
    ids = ids[:, : tf.reduce_max(tf.concat([label_lengths, [0]], 0))]
    # Greedy scores are the negated sum of the best path's (log-probability) scores.
    log_probability = -scores[:, 0] if strategy == "greedy" else scores[:, 0]
    has_frames = lengths > 0
    if confidence == "sequence":
        conf = tf.exp(log_probability)
    else:
        mask = tf.sequence_mask(lengths, tf.shape(log_probs)[1], tf.float32)
        best = tf.exp(tf.reduce_max(log_probs, axis=-1))
        conf = tf.reduce_sum(best * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
    return {
        "ids": ids,
        "lengths": label_lengths,
        "log_probability": log_probability,
        "confidence": tf.where(has_frames, conf, tf.zeros_like(conf)),
    }
