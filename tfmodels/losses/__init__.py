"""Keras losses shared by several model families."""

from tfmodels.losses.multi_label_crossentropy import MultiLabelCrossentropy
from tfmodels.losses.smoothed_sparse_crossentropy import SmoothedSparseCategoricalCrossentropy

__all__ = ["MultiLabelCrossentropy", "SmoothedSparseCategoricalCrossentropy"]
