"""The slots export: raw utterances in; from the joint tagger's logits to what a caller
wants: slot labels (Viterbi-decoded to valid BIO), the intent with its probability, and the
entities as `type=value` text. Also batch prediction's line format."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from pipelines.core.task import DEFAULT_SIGNATURE, Serving
from pipelines.slots.config import SlotsConfig
from pipelines.slots.features import SubwordPieces, UtteranceFeatures
from tfmodels.taggers.fused_lstm import with_fused_lstms
from tfmodels.taggers.joint_tagger import average_members, crf_layers
from tfmodels.taggers.subword_context import SubwordEncoderLayers
from tfmodels.taggers.viterbi import ConstrainedViterbi, bio_transitions

ENTITY_SEPARATOR = "; "
ENCODER_LAYERS = "encoder_layers"  # the model's input of the encoder's per-word layer vectors


def entities_text(
    tokens: tf.RaggedTensor, tags: tf.RaggedTensor, separator: str = ENTITY_SEPARATOR
) -> tf.Tensor:
    """`[B]` strings listing each span as `type=value` (its tokens joined by spaces).

    `tags` are label strings shaped as `tokens`; a span starts at `B-x` or at an `I-x` that
    does not continue a span of type x, so invalid input is read as conlleval reads it.
    """
    flat_tags = tags.flat_values
    flat_tokens = tokens.flat_values
    rows = tokens.value_rowids()
    n = tf.size(flat_tags, out_type=tf.int64)
    kind = tf.strings.regex_replace(flat_tags, "^[BI]-", "")
    inside = tf.strings.regex_full_match(flat_tags, "I-.+")
    in_span = inside | tf.strings.regex_full_match(flat_tags, "B-.+")
    first_in_row = tf.range(n) == tf.gather(tokens.row_starts(), rows)
    prev = tf.maximum(tf.range(n) - 1, 0)
    continues = inside & ~first_in_row & tf.gather(in_span, prev) & (tf.gather(kind, prev) == kind)
    starts = in_span & ~continues
    span_id = tf.cumsum(tf.cast(starts, tf.int64)) - 1
    num_spans = tf.reduce_sum(tf.cast(starts, tf.int64))
    values = tf.strings.unsorted_segment_join(
        tf.boolean_mask(flat_tokens, in_span),
        tf.boolean_mask(span_id, in_span),
        num_spans,
        separator=" ",
    )
    spans = tf.strings.join([tf.boolean_mask(kind, starts), values], separator="=")
    return tf.strings.unsorted_segment_join(
        spans, tf.boolean_mask(rows, starts), tokens.nrows(), separator=separator
    )


def multi_label_intents(
    logits: tf.Tensor, names: tf.Tensor, separator: str, threshold: float = 0.5
):
    """Sigmoid logits `[B, I]` -> (`[B]` the intents at or above `threshold`, most probable
    first, joined by `separator`; the most probable alone where none is; `[B]` the
    probability of exactly that set, the labels taken as independent)."""
    probs = tf.sigmoid(tf.cast(logits, tf.float32))
    top = tf.one_hot(tf.argmax(probs, axis=-1), tf.shape(probs)[-1], on_value=True, off_value=False)
    chosen = probs >= threshold
    chosen = tf.where(tf.reduce_any(chosen, axis=-1, keepdims=True), chosen, top)
    order = tf.argsort(probs, axis=-1, direction="DESCENDING")
    ranked = tf.ragged.boolean_mask(tf.gather(names, order), tf.gather(chosen, order, batch_dims=1))
    intent = tf.strings.reduce_join(ranked, axis=-1, separator=separator)
    probability = tf.reduce_prod(tf.where(chosen, probs, 1.0 - probs), axis=-1)
    return intent, probability


class SlotDecoder(keras.layers.Layer):
    """Tokens `[B, (T)]`, slot logits `[B, T', K]` (T' >= T), intent logits `[B, I]` (and a
    CRF's transitions) ->
    `tokens`, `slots` (`[B, T]`, "" beyond each utterance), `intent`,
    `intent_probability` and `entities`.

    With `intent_separator`, the intent logits are one sigmoid per single intent
    (`multi_label_intents`, above `intent_threshold`); without, one softmax over whole
    labels. With `top_intents` > 0, also `top_intents` and `top_intent_probabilities`
    (`[B, k]`, most probable first).
    """

    def __init__(
        self,
        tags: Sequence[str],
        intents: Sequence[str],
        intent_separator: str | None = None,
        intent_threshold: float = 0.5,
        top_intents: int = 0,
        **kwargs,
    ):
        super().__init__(trainable=False, **kwargs)
        self.tags = list(tags)
        self.intents = list(intents)
        self.intent_separator = intent_separator
        self.intent_threshold = intent_threshold
        self.top_intents = min(top_intents, len(self.intents))
        self.viterbi = ConstrainedViterbi(bio_transitions(self.tags), name="bio_viterbi")
        self.viterbi.built = True
        self.built = True  # no weights: ready for export before its first call

    def call(
        self,
        tokens: tf.RaggedTensor,
        slot_logits: tf.Tensor,
        intent_logits: tf.Tensor,
        transitions: tf.Tensor | None = None,
    ) -> dict[str, tf.Tensor]:
        tag_names = tf.constant(self.tags)
        intent_names = tf.constant(self.intents)
        lengths = tokens.row_lengths()
        # [B, T'], -1 beyond each length; `transitions`: the CRF's, if the model has one
        path = self.viterbi(slot_logits, lengths, transitions)
        ragged_ids = tf.RaggedTensor.from_tensor(path, lengths=lengths)
        tags = ragged_ids.with_flat_values(tf.gather(tag_names, ragged_ids.flat_values))
        if self.intent_separator:
            intent, probability = multi_label_intents(
                intent_logits, intent_names, self.intent_separator, self.intent_threshold
            )
            probs = tf.sigmoid(tf.cast(intent_logits, tf.float32))
        else:
            probs = tf.nn.softmax(tf.cast(intent_logits, tf.float32), axis=-1)
            intent = tf.gather(intent_names, tf.argmax(probs, axis=-1, output_type=tf.int32))
            probability = tf.reduce_max(probs, axis=-1)
        out = {
            "tokens": tokens.to_tensor(""),
            "slots": tags.to_tensor(""),
            "intent": intent,
            "intent_probability": probability,
            "entities": entities_text(tokens, tags),
        }
        if self.top_intents > 0:
            top_p, top_i = tf.math.top_k(probs, k=self.top_intents)
            out["top_intents"] = tf.gather(intent_names, top_i)
            out["top_intent_probabilities"] = top_p
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "tags": self.tags,
            "intents": self.intents,
            "intent_separator": self.intent_separator,
            "intent_threshold": self.intent_threshold,
            "top_intents": self.top_intents,
        }


def encoder_inputs(
    tokens: tf.RaggedTensor, pieces: SubwordPieces, encoder_layers: SubwordEncoderLayers
) -> tf.Tensor:
    """Tokens `[B, (T)]` -> the frozen encoder's `[B, T, L, D]` layer vectors (T >= 1)."""
    width = tf.maximum(tokens.bounding_shape(axis=1), 1)
    pieced = pieces(tokens, width)
    return encoder_layers(pieced["pieces"], pieced["first_piece"])


def signatures(
    config: SlotsConfig,
    model: keras.Model,
    features: UtteranceFeatures,
    tags: Sequence[str],
    intents: Sequence[str],
    output_keys: Sequence[tuple[str, str]],
    pieces: SubwordPieces | None = None,
    encoder_layers: SubwordEncoderLayers | None = None,
) -> dict[str, Serving]:
    """`serving_default`: `text` -> `SlotDecoder`'s outputs. `output_keys`: (slot output,
    intent output) of each ensemble member (their logits are averaged); `pieces` and
    `encoder_layers`: the frozen pretrained encoder, with `model.pretrained`."""
    multi_intent = config.model.multi_intent
    options = config.serving
    decoder = SlotDecoder(
        tags,
        intents,
        name="slot_decoder",
        intent_separator=config.data.intent_separator if multi_intent else None,
        intent_threshold=options.intent_threshold,
        top_intents=options.top_intents,
    )
    # The same weights, each BiLSTM run by one fused kernel: faster on a CPU.
    infer = with_fused_lstms(model) if options.fused_lstm else model
    transitions = [layer.transitions for layer in crf_layers(model)]
    keys = list(output_keys)

    def serve(text: tf.Tensor) -> dict[str, tf.Tensor]:
        tokens = features.tokenize(text)
        inputs = features(tokens)
        if encoder_layers is not None:
            inputs[ENCODER_LAYERS] = encoder_inputs(tokens, pieces, encoder_layers)
        logits = infer(inputs, training=False)
        return decoder(
            tokens, *average_members(logits, keys, transitions, multi_label=multi_intent)
        )

    return {
        DEFAULT_SIGNATURE: Serving(
            serve,
            {"text": tf.TensorSpec([None], tf.string)},
            resources=[
                model,
                infer,
                features,
                decoder,
                *filter(None, [pieces, encoder_layers]),
            ],
        )
    }


def lines_from_response(
    outputs: dict[str, np.ndarray],
    signature: str = DEFAULT_SIGNATURE,
    lines: Sequence[str] = (),
) -> list[str]:
    """`slot slot ...<TAB>intent` per utterance; an empty utterance gives `<TAB>intent`."""
    out = []
    for tokens, slots, intent in zip(
        outputs["tokens"], outputs["slots"], outputs["intent"], strict=True
    ):
        n = int(np.count_nonzero(tokens != b""))
        labels = " ".join(s.decode("utf-8") for s in slots[:n])
        out.append(f"{labels}\t{intent.decode('utf-8')}")
    return out
