"""Anomaly-detection and reconstruction figures, in numpy (no scikit-learn needed)."""

from __future__ import annotations

import numpy as np


def auroc(scores: np.ndarray, is_anomaly: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for `is_anomaly`: the chance that a random
    anomaly scores above a random normal image (ties count half; Mann-Whitney U)."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(is_anomaly, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        raise ValueError("AUROC needs both anomalies and normal images")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    # Tied scores share the mean of their ranks.
    unique, inverse = np.unique(scores, return_inverse=True)
    if len(unique) < len(scores):
        sums = np.bincount(inverse, weights=ranks)
        counts = np.bincount(inverse)
        ranks = (sums / counts)[inverse]
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def average_precision(scores: np.ndarray, is_anomaly: np.ndarray) -> float:
    """Average precision of ranking anomalies first: sum over the distinct score
    thresholds, from high to low, of (recall gained) x (precision there)."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(is_anomaly, dtype=bool)
    total = int(positive.sum())
    if not total:
        raise ValueError("average precision needs at least one anomaly")
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, hits = scores[order], positive[order]
    # The last position of each run of equal scores: thresholds between distinct values.
    last = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1]
    true_positives = np.cumsum(hits)[last]
    precision = true_positives / (last + 1)
    recall = true_positives / total
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def psnr(mse: np.ndarray, peak: float = 1.0) -> np.ndarray:
    """Peak signal-to-noise ratio in dB of per-image mean squared errors (pixels 0-1)."""
    return 10.0 * np.log10(peak**2 / np.maximum(np.asarray(mse, dtype=np.float64), 1e-10))


def threshold_at(scores: np.ndarray, percentile: float) -> float:
    """The anomaly threshold: `percentile` of the normal images' scores."""
    if not len(scores):
        raise ValueError("no normal scores to choose a threshold from")
    return float(np.percentile(np.asarray(scores, dtype=np.float64), percentile))
