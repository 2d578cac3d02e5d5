"""Keras layers shared by several model families."""

from tfmodels.layers.fused_batch_norm import FusedBatchNormalization, fused_batch_norm

__all__ = ["FusedBatchNormalization", "fused_batch_norm"]
