"""Where the decoder looked: cross-attention heat maps of translated sentences."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from pipelines.core.plots import save_png  # also selects the Agg backend


def attention_png(
    weights: np.ndarray, source: Sequence[str], output: Sequence[str], sentence: str, path: Path
) -> Path:
    """`weights` `[output tokens, source tokens]` as a heat map, subword pieces on the
    axes (`▁` starts a word), the sentence as the title."""
    fig, ax = plt.subplots(figsize=(1.0 + 0.38 * len(source), 1.2 + 0.32 * len(output)))
    ax.imshow(
        weights, cmap="viridis", vmin=0.0, vmax=max(float(weights.max()), 1e-6), aspect="auto"
    )
    ax.set_xticks(range(len(source)), source, rotation=90, fontsize=8)
    ax.set_yticks(range(len(output)), output, fontsize=8)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    ax.set_title(sentence if len(sentence) <= 70 else sentence[:67] + "...", fontsize=9)
    fig.tight_layout()
    return save_png(fig, path, dpi=90)
