"""Joint tagger and classifier: the recurrent tagger's encoder (`encode_sequence`) shared by
per-position tag logits and one sequence label (slot filling with intent detection).

Word ids go through the tagger's embeddings; an optional character encoder adds a vector
per word from its spelling; the BiRNN states feed a tag head and an attention-pooled
sequence head. Outputs are a dict: `{"slots": [B, T, K], "intent": [B, I]}` logits.
"""

from __future__ import annotations

import dataclasses

import keras
from keras import ops

from tfmodels.taggers.char_encoder import CharCNN
from tfmodels.taggers.config import JointTaggerConfig
from tfmodels.taggers.crf import CRFTransitions
from tfmodels.taggers.recurrent_tagger import (
    EmbeddingSpec,
    TaggerSpec,
    encode_sequence,
    tagger_inputs,
)


@dataclasses.dataclass
class CharEncoderSpec:
    """A `CharCNN` over the `[B, T, C]` int input named `input`."""

    vocab_size: int
    dim: int = 32
    filters: int = 64
    kernel_sizes: tuple[int, ...] = (3,)
    input: str = "chars"
    init_stddev: float = 0.0


@dataclasses.dataclass
class JointTaggerSpec:
    tagger: TaggerSpec  # num_tags = slot labels; embeddings[0].inputs[0] defines the mask
    num_intents: int
    chars: CharEncoderSpec | None = None
    attention_units: int = 64
    intent_dropout: float = 0.2
    # > 0: each position's tag head also sees the pooled utterance vector (projected to
    # this width), so slot types that depend on the intent (a ground-service city vs a
    # destination city) can use it.
    intent_context: int = 0
    # A linear-chain CRF over the tag logits (`crf.CRFTransitions`, trained with
    # `crf.CRFLoss`): whole tag sequences are scored, not each position alone.
    crf: bool = False
    tag_output: str = "slots"
    sequence_output: str = "intent"

    @classmethod
    def from_config(
        cls,
        config: JointTaggerConfig,
        num_tags: int,
        num_intents: int,
        word_vocab_size: int,
        char_vocab_size: int,
        dense_inputs: dict[str, int] | None = None,
    ) -> JointTaggerSpec:
        """The spec of `config` for the data's vocabularies and labels: word ids (input
        `words`), char ids (`chars`, with `config.use_chars`) and `dense_inputs`."""
        tagger = TaggerSpec(
            num_tags=num_tags,
            embeddings=[
                EmbeddingSpec(
                    "word",
                    word_vocab_size,
                    config.word_dim,
                    ("words",),
                    init_stddev=config.embedding_init_stddev,
                )
            ],
            dense_inputs=dict(dense_inputs or {}),
            layers=config.layers,
            units=config.units,
            cell=config.cell,
            dropout=config.dropout,
            embedding_dropout=config.embedding_dropout,
        )
        chars = None
        if config.use_chars:
            chars = CharEncoderSpec(
                char_vocab_size,
                config.char_dim,
                config.char_filters,
                tuple(config.char_kernel_sizes),
                init_stddev=config.embedding_init_stddev,
            )
        return cls(
            tagger,
            num_intents=num_intents,
            chars=chars,
            attention_units=config.attention_units,
            intent_dropout=config.intent_dropout,
            intent_context=config.intent_context,
            crf=config.crf,
        )


@keras.saving.register_keras_serializable(package="tfmodels")
class AttentionPooling(keras.layers.Layer):
    """Masked additive attention over time: `[B, T, D]` states -> `[B, D]`.

    A sequence with no real positions gets uniform weights over its padding instead of NaN.
    """

    def __init__(self, units: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = keras.layers.Dense(units, activation="tanh", name="attention_hidden")
        self.score = keras.layers.Dense(1, use_bias=False, name="attention_score")

    def build(self, input_shape):
        self.hidden.build(input_shape)
        self.score.build((*input_shape[:-1], self.units))
        self.built = True

    def call(self, states, mask=None):
        scores = ops.squeeze(self.score(self.hidden(states)), -1)  # [B, T]
        if mask is not None:
            scores = ops.where(mask, scores, ops.cast(-1e4, scores.dtype))
        weights = ops.softmax(ops.cast(scores, "float32"), axis=-1)
        weights = ops.cast(weights, states.dtype)
        return ops.sum(ops.expand_dims(weights, -1) * states, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="tfmodels")
class BroadcastConcat(keras.layers.Layer):
    """`[B, T, D]` and `[B, E]` -> `[B, T, D + E]`: the vector repeated at every position."""

    def call(self, sequence, vector):
        steps = ops.shape(sequence)[1]
        tiled = ops.repeat(ops.expand_dims(vector, 1), steps, axis=1)
        return ops.concatenate([sequence, ops.cast(tiled, sequence.dtype)], axis=-1)

    def compute_output_shape(self, sequence_shape, vector_shape):
        return (*sequence_shape[:-1], sequence_shape[-1] + vector_shape[-1])

    def compute_mask(self, inputs, mask=None):
        return None


def joint_tagger_inputs(spec: JointTaggerSpec) -> dict[str, keras.KerasTensor]:
    inputs = tagger_inputs(spec.tagger)
    if spec.chars is not None:
        inputs[spec.chars.input] = keras.Input(
            shape=(None, None), dtype="int32", name=spec.chars.input
        )
    return inputs


def build_joint_tagger(spec: JointTaggerSpec, name: str = "joint_tagger") -> keras.Model:
    """Model from `[B, T]` word ids (and `[B, T, C]` char ids) to slot and intent logits."""
    inputs = joint_tagger_inputs(spec)
    extra = []
    if spec.chars is not None:
        c = spec.chars
        encoder = CharCNN(
            c.vocab_size, c.dim, c.filters, c.kernel_sizes, c.init_stddev, name="char_cnn"
        )
        extra.append(encoder(inputs[c.input]))
    states, mask = encode_sequence(spec.tagger, inputs, extra=extra)
    pooled = AttentionPooling(spec.attention_units, name="attention_pooling")(states, mask=mask)
    pooled = keras.layers.Dropout(spec.intent_dropout)(pooled)
    tag_features = states
    if spec.intent_context > 0:
        context = keras.layers.Dense(spec.intent_context, activation="tanh", name="intent_context")(
            pooled
        )
        tag_features = BroadcastConcat(name="tag_features")(states, context)
    tags = keras.layers.Dense(spec.tagger.num_tags, dtype="float32", name=spec.tag_output)(
        tag_features
    )
    if spec.crf:
        tags = CRFTransitions(spec.tagger.num_tags, name=f"{spec.tag_output}_crf")(tags)
    intent = keras.layers.Dense(spec.num_intents, dtype="float32", name=spec.sequence_output)(
        pooled
    )
    return keras.Model(inputs, {spec.tag_output: tags, spec.sequence_output: intent}, name=name)


def member_output_keys(spec: JointTaggerSpec, members: int) -> list[tuple[str, str]]:
    """(tag output, sequence output) of each member: the spec's names for a single model,
    with the member's index (`slots_0`, `intent_0`, ...) for an ensemble."""
    if members <= 1:
        return [(spec.tag_output, spec.sequence_output)]
    return [(f"{spec.tag_output}_{i}", f"{spec.sequence_output}_{i}") for i in range(members)]


def crf_layers(model: keras.Model) -> list[CRFTransitions]:
    """The model's CRF layers, members in order (nested models searched)."""
    found = []
    for layer in model.layers:
        if isinstance(layer, CRFTransitions):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found += crf_layers(layer)
    return found


def build_joint_tagger_ensemble(
    spec: JointTaggerSpec, members: int, name: str = "joint_tagger_ensemble"
) -> keras.Model:
    """`members` joint taggers (submodels `member_0`, ...) on the same inputs, each with its
    own initialisation and dropout noise, trained side by side with a loss each and
    averaged at inference (`average_members`).

    Outputs are keyed by `member_output_keys`: averaging a few independently trained
    taggers is the most dependable gain in tagging accuracy there is, and members train in
    parallel on the cores a single small BiLSTM leaves idle.
    """
    inputs = joint_tagger_inputs(spec)
    outputs = {}
    for i, (tag_key, sequence_key) in enumerate(member_output_keys(spec, members)):
        out = build_joint_tagger(spec, name=f"member_{i}")(inputs)
        outputs[tag_key] = out[spec.tag_output]
        outputs[sequence_key] = out[spec.sequence_output]
    return keras.Model(inputs, outputs, name=name)


def average_members(
    outputs: dict,
    keys: list[tuple[str, str]],
    transitions: list | None = None,
    multi_label: bool = False,
):
    """(tag scores, sequence logits, transitions) averaged over the members whose outputs
    `keys` names (`member_output_keys`), in the form the single model's decoder takes; for
    one member they decode exactly as that model's own outputs.

    Softmax tag heads: the mean of log-probabilities (a geometric mean, which Viterbi
    decodes as it does one model's). CRF heads (`transitions`, one per member): the mean
    of the potentials and of the transitions. Sequence labels: the log of the mean
    probability, so a softmax of it gives the averaged probabilities; with `multi_label`
    (one sigmoid per label) the logit of the mean probability, so a sigmoid of it does.
    """
    import tensorflow as tf

    tags = [tf.cast(outputs[tag_key], tf.float32) for tag_key, _ in keys]
    if transitions:
        transitions = tf.reduce_mean(
            tf.stack([tf.cast(t, tf.float32) for t in transitions]), axis=0
        )
    else:
        transitions = None
        tags = [tf.nn.log_softmax(t, axis=-1) for t in tags]
    logits = tf.stack([tf.cast(outputs[key], tf.float32) for _, key in keys])
    members = tf.math.log(float(len(keys)))
    if multi_label:
        log_p = tf.reduce_logsumexp(tf.math.log_sigmoid(logits), axis=0) - members
        log_not_p = tf.reduce_logsumexp(tf.math.log_sigmoid(-logits), axis=0) - members
        sequence = log_p - log_not_p
    else:
        sequence = tf.reduce_logsumexp(tf.nn.log_softmax(logits, axis=-1), axis=0) - members
    return tf.reduce_mean(tf.stack(tags), axis=0), sequence, transitions
