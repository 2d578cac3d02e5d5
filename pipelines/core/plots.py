"""PNG figures logged to MLflow: things a person would rather look at than read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save_png(fig, path: Path, dpi: int = 100) -> Path:
    """Write `fig` to `path` (folders made as needed) and free it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def training_curves_png(history: Mapping[str, Sequence[float]], path: Path) -> Path:
    """One panel per metric, train and validation together (`x` and `val_x`)."""
    names = [k for k in history if not k.startswith("val_") and k != "learning_rate"]
    names += [k[4:] for k in history if k.startswith("val_") and k[4:] not in history]
    if "learning_rate" in history:
        names.append("learning_rate")
    cols = min(3, max(1, len(names)))
    rows = (len(names) + cols - 1) // cols or 1
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.2 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        for key, style in ((name, "-o"), (f"val_{name}", "--s")):
            values = history.get(key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, label=key, markersize=3)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        if name == "learning_rate":
            ax.set_yscale("log")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    return save_png(fig, path)


def confusion_matrix_png(
    labels: Sequence[str],
    y_true: Sequence[int],
    y_pred: Sequence[int],
    path: Path,
    title: str = "confusion matrix",
    max_labels: int = 40,
) -> Path:
    """Row-normalised confusion matrix; only the most frequent `max_labels` classes shown."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    n = len(labels)
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    keep = np.argsort(-counts.sum(axis=1), kind="stable")[:max_labels]
    keep = np.sort(keep)
    shown = counts[np.ix_(keep, keep)]
    norm = shown / np.maximum(shown.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.35 * len(keep) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(keep)), [labels[i] for i in keep], rotation=90, fontsize=7)
    ax.set_yticks(range(len(keep)), [labels[i] for i in keep], fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if len(keep) <= 15:
        for i in range(len(keep)):
            for j in range(len(keep)):
                if shown[i, j]:
                    ax.text(
                        j,
                        i,
                        str(shown[i, j]),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black",
                    )
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    return save_png(fig, path)
