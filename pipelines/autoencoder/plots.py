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


def plot_sample(normal: np.ndarray, count: int) -> np.ndarray:
    """Test indices to show: the first normal images, and as many anomalies if any."""
    normal_ids, anomaly_ids = np.flatnonzero(normal), np.flatnonzero(~normal)
    if not len(anomaly_ids):
        return normal_ids[:count]
    half = max(1, count // 2)
    return np.concatenate([normal_ids[: count - half], anomaly_ids[:half]])


def vae_pngs(model, codes: np.ndarray, seed: int, out_dir: Path, title: str) -> list[Path]:
    """A VAE's images decoded from random normal codes (drawn from `seed`), and from codes
    on straight lines between the posterior means (`codes`) of pairs of test images."""
    rng = np.random.default_rng(seed)
    samples = model.decode(rng.standard_normal((32, model.code_size)).astype(np.float32))
    samples = samples.numpy()
    paths = [
        image_rows_png(
            [(f"samples {i * 8 + 1}-{i * 8 + 8}", samples[i * 8 : i * 8 + 8]) for i in range(4)],
            out_dir / "vae_samples.png",
            f"{title}: decoded random normal codes",
        )
    ]
    steps = np.linspace(0.0, 1.0, 9, dtype=np.float32)[:, None]
    rows = []
    for row in range(min(4, len(codes) // 2)):
        start, end = codes[2 * row], codes[2 * row + 1]
        path = (1 - steps) * start + steps * end
        rows.append((f"test {2 * row} to {2 * row + 1}", model.decode(path).numpy()))
    if rows:
        paths.append(
            image_rows_png(
                rows,
                out_dir / "vae_interpolation.png",
                f"{title}: decoded codes between two test images",
            )
        )
    return paths
