"""Sigmoid cross-entropy summed over labels, for multi-hot targets.

Keras' `BinaryCrossentropy` averages over the label axis, which shrinks each label's
gradient by the number of labels; summed, a multi-label head learns at the rate of a
softmax head beside it in a joint loss.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfmodels")
class MultiLabelCrossentropy(keras.losses.Loss):
    def __init__(self, from_logits: bool = True, name: str = "multi_label_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        per_label = ops.binary_crossentropy(y_true, y_pred, from_logits=self.from_logits)
        return ops.sum(per_label, axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "from_logits": self.from_logits}
