"""Cross-entropy on integer labels with label smoothing.

Keras' `SparseCategoricalCrossentropy` has no `label_smoothing` (only the one-hot
`CategoricalCrossentropy` does): this one takes integer labels, as every tf.data reader
here yields them, and smooths them to `1 - s + s/K` for the true class and `s/K` for the
others. Smoothing keeps the logits from growing without bound, which helps short training
runs generalise (Szegedy et al., 2016).
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tfmodels")
class SmoothedSparseCategoricalCrossentropy(keras.losses.Loss):
    def __init__(
        self,
        label_smoothing: float = 0.1,
        from_logits: bool = False,
        name: str = "smoothed_sparse_categorical_crossentropy",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing
        self.from_logits = from_logits

    def call(self, y_true, y_pred):
        y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)[:-1]), "int32")
        one_hot = ops.one_hot(y_true, ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=self.from_logits, label_smoothing=self.label_smoothing
        )

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "label_smoothing": self.label_smoothing,
            "from_logits": self.from_logits,
        }
