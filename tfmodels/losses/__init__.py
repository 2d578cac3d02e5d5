"""Keras losses shared by several model families."""

from tfmodels.losses.smoothed_sparse_crossentropy import SmoothedSparseCategoricalCrossentropy

__all__ = ["SmoothedSparseCategoricalCrossentropy"]
