"""Keras layers shared by several model families."""

from tfmodels.layers.fused_batch_norm import FusedBatchNormalization

__all__ = ["FusedBatchNormalization"]
