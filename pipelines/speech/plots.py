"""What a person would rather look at: where each character fires in an utterance."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from pipelines.core.plots import save_png  # also selects the Agg backend


def posteriors_png(
    features: np.ndarray,
    frames: np.ndarray,
    posteriors: np.ndarray,
    logit_frames: np.ndarray,
    labels: Sequence[str],
    references: Sequence[str],
    decoded: Sequence[str],
    path: Path,
    shown: float = 0.3,
) -> Path:
    """Per utterance: its log-mel spectrogram (`features` `[B, F, M]`, `frames` valid),
    and under it the CTC posteriors (`[B, F', C]`, `logit_frames` valid) of every
    character that reaches `shown` somewhere, the blank in grey."""
    rows = len(features)
    fig, axes = plt.subplots(
        2 * rows,
        1,
        figsize=(10, 3.2 * rows),
        squeeze=False,
        gridspec_kw={"height_ratios": [1.2, 1] * rows},
    )
    for i in range(rows):
        spec_ax, post_ax = axes[2 * i, 0], axes[2 * i + 1, 0]
        n, m = int(frames[i]), int(logit_frames[i])
        spec_ax.imshow(features[i, :n].T, origin="lower", aspect="auto", cmap="magma")
        spec_ax.set_title(
            f"reference: {references[i]!r}\ndecoded:   {decoded[i]!r}",
            fontsize=9,
            loc="left",
            family="monospace",
        )
        spec_ax.set_ylabel("mel bin")
        spec_ax.set_xticks([])
        p = posteriors[i, :m]
        x = (np.arange(m) + 0.5) * (n / max(m, 1))  # output frames on the input's axis
        post_ax.plot(x, p[:, 0], color="0.75", linewidth=1, label="<blank>")
        for c in range(1, p.shape[1]):
            if p[:, c].max() >= shown:
                post_ax.plot(x, p[:, c], linewidth=1.2)
                peak = int(p[:, c].argmax())
                post_ax.annotate(
                    repr(labels[c])[1:-1] or "␣",
                    (x[peak], p[peak, c]),
                    fontsize=8,
                    ha="center",
                    va="bottom",
                )
        post_ax.set_xlim(0, max(n, 1))
        post_ax.set_ylim(0, 1.08)
        post_ax.set_ylabel("posterior")
        post_ax.set_xlabel("frame")
    fig.tight_layout()
    return save_png(fig, path, dpi=90)
