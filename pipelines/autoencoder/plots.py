"""The autoencoder's pictures: image grids, the latent space, anomaly-score histograms."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from pipelines.core.plots import save_png  # also selects the Agg backend


def _show(ax, image: np.ndarray) -> None:
    image = np.clip(np.asarray(image, dtype=np.float32), 0, 1)
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])


def image_rows_png(
    rows: Sequence[tuple[str, np.ndarray]],
    path: Path,
    title: str,
    captions: Sequence[str] | None = None,
) -> Path:
    """One row of images (pixels in [0, 1]) per `(label, images)`, the label at its left;
    `captions` under the first row's images."""
    columns = max(len(images) for _, images in rows)
    fig, axes = plt.subplots(
        len(rows), columns, squeeze=False, figsize=(1.3 * columns + 0.8, 1.4 * len(rows) + 0.6)
    )
    for r, (label, images) in enumerate(rows):
        for c in range(columns):
            ax = axes[r, c]
            if c < len(images):
                _show(ax, images[c])
            else:
                ax.axis("off")
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
            if r == 0 and captions is not None and c < len(captions):
                ax.set_title(captions[c], fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


def project_2d(codes: np.ndarray) -> tuple[np.ndarray, str]:
    """The codes themselves if 2-D, else their first two principal components."""
    codes = np.asarray(codes, dtype=np.float64)
    if codes.shape[1] <= 2:
        padded = np.zeros((len(codes), 2))
        padded[:, : codes.shape[1]] = codes
        return padded, "code"
    centred = codes - codes.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    return centred @ components[:2].T, "first two principal components of the code"


def latent_png(
    codes: np.ndarray, labels: np.ndarray, class_names: Sequence[str], path: Path, title: str
) -> Path:
    """The codes in two dimensions, coloured by class."""
    points, how = project_2d(codes)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for index, name in enumerate(class_names):
        chosen = labels == index
        if chosen.any():
            ax.scatter(
                points[chosen, 0],
                points[chosen, 1],
                s=8,
                alpha=0.7,
                color=cmap(index % cmap.N),
                label=name,
            )
    ax.set_title(f"{title}\n({how})", fontsize=10)
    ax.legend(fontsize=7, markerscale=2, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_png(fig, path)


def score_histogram_png(
    scores: np.ndarray, is_anomaly: np.ndarray | None, threshold: float, path: Path, title: str
) -> Path:
    """Anomaly scores of normal and anomalous test images, and the threshold."""
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.histogram_bin_edges(scores, bins=40)
    if is_anomaly is None:
        ax.hist(scores, bins=bins, alpha=0.7, label="test images")
    else:
        ax.hist(scores[~is_anomaly], bins=bins, alpha=0.6, label="normal")
        ax.hist(scores[is_anomaly], bins=bins, alpha=0.6, label="anomalous")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.4g}")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("images")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, path)
