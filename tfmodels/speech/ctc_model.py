"""A CTC speech recogniser: a strided convolutional front end (2-D over time x mel bins,
or 1-D over time), stacked bidirectional GRUs or LSTMs, per-frame logits over the
vocabulary and the CTC blank (id 0).

The model outputs `{"logits": [B, T', C], "logit_lengths": [B]}`: CTC needs each
utterance's number of valid output frames, and the front end's strides decide it. It is a
`CTCModel`, whose `compute_loss` applies `CTCLoss` to both outputs, so it trains with plain
`model.compile(optimizer)` (no `loss`) and `model.fit` on `(inputs, labels)` batches.

Why a model subclass and not a loss passed to `compile`: a Keras loss sees one `y_pred`
tensor, and CTC needs the logit lengths too. Reading them back from a sentinel in padded
frames, or from sequence lengths packed into the labels, would tie the loss to a hidden
convention; here the lengths are an output of the same graph that shortens the frames.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from tfmodels.speech.config import CTCRecognizerConfig
from tfmodels.speech.features import LogMelSpectrogram
from tfmodels.speech.spec_augment import SpecAugment

BLANK = 0  # CTC blank id; labels are 1..C-1


def output_lengths(frame_lengths, time_strides) -> tf.Tensor:
    """Output frames of the front end's convolutions of `time_strides`: `ceil(n / s)` once
    per stride. int32, `[B]` as `frame_lengths`."""
    lengths = tf.cast(frame_lengths, tf.int32)
    for stride in time_strides:
        lengths = (lengths + stride - 1) // stride
    return lengths


def min_ctc_frames(labels) -> tf.Tensor:
    """`[B]` the fewest output frames that can emit each row of `labels` (`[B, L]` ids,
    `<= 0` beyond each row's length): one per label plus a blank between repeats."""
    labels = tf.cast(labels, tf.int32)
    valid = labels > 0
    repeats = valid[:, 1:] & valid[:, :-1] & tf.equal(labels[:, 1:], labels[:, :-1])
    return tf.reduce_sum(tf.cast(valid, tf.int32), axis=1) + tf.reduce_sum(
        tf.cast(repeats, tf.int32), axis=1
    )


@keras.saving.register_keras_serializable(package="tfmodels")
class CTCLoss(keras.losses.Loss):
    """CTC negative log-likelihood per utterance (`keras.ops.ctc_loss`, blank id 0).

    `y_true`: `[B, L]` label ids 1..C-1, padded with 0 or -1. `y_pred`: the model's dict,
    `logits` `[B, T', C]` and `logit_lengths` `[B]`. An utterance with fewer output frames
    than its labels need (`min_ctc_frames`) cannot be aligned: it costs 0 instead of a
    huge constant that would swamp the batch (filter such utterances out of the data).
    """

    def __init__(self, name: str = "ctc_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        labels = tf.cast(y_true, tf.int32)
        logits = y_pred["logits"]
        logit_lengths = tf.cast(y_pred["logit_lengths"], tf.int32)
        feasible = logit_lengths >= min_ctc_frames(labels)
        label_lengths = tf.reduce_sum(tf.cast(labels > 0, tf.int32), axis=1)
        loss = keras.ops.ctc_loss(
            tf.maximum(labels, 0),
            logits,
            tf.where(feasible, label_lengths, 0),
            logit_lengths,
            mask_index=BLANK,
        )
        return tf.where(feasible, loss, tf.zeros_like(loss))


@keras.saving.register_keras_serializable(package="tfmodels")
class CTCModel(keras.Model):
    """A functional model with outputs `logits` and `logit_lengths`, trained by CTC.

    Compile it without a loss: `compute_loss` is `CTCLoss` on the outputs (with sample
    weights, and scaled for `tf.distribute` as any Keras loss) plus the layers' own losses.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ctc_loss = CTCLoss()

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.ctc_loss(y, y_pred, sample_weight)
        for extra in self.losses:
            loss += self._aggregate_additional_loss(extra)
        return loss


@dataclasses.dataclass
class CTCModelSpec:
    """Sizes of the recogniser. `num_classes` counts the blank: vocabulary size + 1."""

    num_classes: int
    num_features: int = 40  # mel bins of the input features
    conv: str = "2d"  # 2d: over time x mel bins; 1d: over time, mel bins as channels
    conv_filters: tuple[int, ...] = (32, 32)
    conv_kernel: int = 3
    time_strides: tuple[int, ...] = (2, 2)  # one per conv layer; their product subsamples
    freq_strides: tuple[int, ...] = (2, 2)  # 2d only, one per conv layer
    projection: int = 0  # >0: a linear projection of the conv output before the RNNs
    cell: str = "gru"  # gru | lstm
    layers: int = 3
    units: int = 128
    dropout: float = 0.1

    @classmethod
    def from_config(cls, config: CTCRecognizerConfig, num_classes: int) -> CTCModelSpec:
        """The spec of `config` for `num_classes` labels (the vocabulary's, with the blank)."""
        return cls(
            num_classes=num_classes,
            num_features=config.n_mels,
            conv=config.conv,
            conv_filters=tuple(config.conv_filters),
            conv_kernel=config.conv_kernel,
            time_strides=tuple(config.time_strides),
            freq_strides=tuple(config.freq_strides),
            projection=config.projection,
            cell=config.cell,
            layers=config.layers,
            units=config.units,
            dropout=config.dropout,
        )

    def __post_init__(self):
        if self.conv not in ("1d", "2d"):
            raise ValueError(f"model.conv: unknown '{self.conv}' (1d, 2d)")
        if self.cell not in ("gru", "lstm"):
            raise ValueError(f"model.cell: unknown cell '{self.cell}' (gru, lstm)")
        if len(self.time_strides) != len(self.conv_filters) or (
            self.conv == "2d" and len(self.freq_strides) != len(self.conv_filters)
        ):
            raise ValueError(
                "model: one time stride (and, for 2d, one frequency stride) per conv layer"
            )


@keras.saving.register_keras_serializable(package="tfmodels")
class ZeroPadding(keras.layers.Layer):
    """`[B, T, ...]` with frames at or beyond each length set to 0: the next convolution
    then sees zeros past the end, as it would for the utterance alone."""

    def call(self, x, lengths):
        mask = tf.sequence_mask(lengths, tf.shape(x)[1], x.dtype)
        for _ in range(len(x.shape) - 2):
            mask = mask[..., None]
        return x * mask

    def compute_output_shape(self, x_shape, lengths_shape):
        return x_shape


@keras.saving.register_keras_serializable(package="tfmodels")
class StridedLengths(keras.layers.Layer):
    """Frame lengths `[B]` -> lengths after the front end's convolutions of `time_strides`."""

    def __init__(self, time_strides: tuple[int, ...] | list[int], **kwargs):
        super().__init__(**kwargs)
        self.time_strides = tuple(int(s) for s in time_strides)

    def call(self, lengths):
        return output_lengths(lengths, self.time_strides)

    def compute_output_spec(self, lengths):
        return keras.KerasTensor(lengths.shape, "int32")

    def get_config(self) -> dict:
        return {**super().get_config(), "time_strides": list(self.time_strides)}


@keras.saving.register_keras_serializable(package="tfmodels")
class LengthMask(keras.layers.Layer):
    """`[B, T, ...]` and lengths `[B]` -> `[B, T]` bool mask for the RNNs. A row of length
    0 keeps its first frame, so no RNN kernel (cuDNN included) sees an empty sequence; the
    decoder reads the true lengths."""

    def call(self, x, lengths):
        return tf.sequence_mask(tf.maximum(lengths, 1), tf.shape(x)[1])

    def compute_output_spec(self, x, lengths):
        return keras.KerasTensor(x.shape[:2], "bool")


def _front_end(spec: CTCModelSpec, x, lengths):
    """Strided convolutions over `[B, F, num_features]` -> `[B, F', D]`, lengths `[B]`.

    Padded explicitly (`(k - 1) // 2` before, the rest after) rather than by Keras'
    'same': with a stride, 'same' pads by the parity of the batch's width, so an utterance
    would give other frames alone than in a batch.
    """
    k = spec.conv_kernel
    pad = ((k - 1) // 2, k - 1 - (k - 1) // 2)
    if spec.conv == "2d":
        x = keras.layers.Reshape((-1, spec.num_features, 1), name="add_channel")(x)
    for i, filters in enumerate(spec.conv_filters):
        if spec.conv == "2d":
            x = keras.layers.ZeroPadding2D((pad, pad), name=f"conv_pad_{i}")(x)
            x = keras.layers.Conv2D(
                filters,
                k,
                strides=(spec.time_strides[i], spec.freq_strides[i]),
                activation="relu",
                name=f"conv_{i}",
            )(x)
        else:
            x = keras.layers.ZeroPadding1D(pad, name=f"conv_pad_{i}")(x)
            x = keras.layers.Conv1D(
                filters, k, strides=spec.time_strides[i], activation="relu", name=f"conv_{i}"
            )(x)
        lengths = StridedLengths(spec.time_strides[i : i + 1], name=f"lengths_{i}")(lengths)
        x = ZeroPadding(name=f"zero_padding_{i}")(x, lengths)
    if spec.conv == "2d":
        x = keras.layers.Reshape((-1, x.shape[2] * x.shape[3]), name="merge_bins")(x)
    if spec.projection:
        x = keras.layers.Dense(spec.projection, name="projection")(x)
    return x, lengths


def build_ctc_model(
    spec: CTCModelSpec,
    features: LogMelSpectrogram | None = None,
    augment: SpecAugment | None = None,
    name: str = "ctc_model",
) -> CTCModel:
    """The recogniser as a `CTCModel`.

    Inputs: without `features`, `{"features": [B, F, num_features] float32,
    "frame_lengths": [B] int32}` (features made in the data pipeline); with a
    `LogMelSpectrogram`, `{"waveform": [B, T] float32, "lengths": [B] int32}` (samples),
    the features made inside the model. `augment` (SpecAugment) acts in training only.
    Outputs: `{"logits": [B, F', num_classes] float32, "logit_lengths": [B] int32}` with
    `F' = output_lengths(F, spec.time_strides)`.
    """
    if features is None:
        inputs = {
            "features": keras.Input((None, spec.num_features), name="features"),
            "frame_lengths": keras.Input((), dtype="int32", name="frame_lengths"),
        }
        x, lengths = inputs["features"], inputs["frame_lengths"]
    else:
        if features.n_mels != spec.num_features:
            raise ValueError(
                f"model: {features.n_mels} mel bins but num_features {spec.num_features}"
            )
        inputs = {
            "waveform": keras.Input((None,), name="waveform"),
            "lengths": keras.Input((), dtype="int32", name="lengths"),
        }
        x, lengths = features(inputs["waveform"], inputs["lengths"])
    if augment is not None:
        x = augment(x, lengths)
    x, lengths = _front_end(spec, x, lengths)
    mask = LengthMask(name="rnn_mask")(x, lengths)
    rnn = keras.layers.GRU if spec.cell == "gru" else keras.layers.LSTM
    for i in range(spec.layers):
        x = keras.layers.Dropout(spec.dropout, name=f"dropout_{i}")(x)
        # Default activations, no recurrent dropout: the cuDNN kernel applies on a GPU.
        x = keras.layers.Bidirectional(rnn(spec.units, return_sequences=True), name=f"birnn_{i}")(
            x, mask=mask
        )
    x = keras.layers.Dropout(spec.dropout, name="dropout_out")(x)
    logits = keras.layers.Dense(spec.num_classes, dtype="float32", name="logits")(x)
    outputs = {
        "logits": logits,
        "logit_lengths": keras.layers.Identity(name="logit_lengths")(lengths),
    }
    return CTCModel(inputs, outputs, name=name)
