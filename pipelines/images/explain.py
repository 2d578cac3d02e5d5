"""Why the classifier decided: Grad-CAM++ and SmoothGrad (tf-keras-vis), misclassifications.

The explanations are computed on a float32 model whose output is the logits (not the
softmax, whose gradients saturate), as tf-keras-vis recommends.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np

from pipelines.core.plots import save_png  # also selects the Agg backend


def cam_layer(model: keras.Model, min_size: int = 4) -> keras.layers.Layer:
    """The last layer with a spatial map of at least `min_size` pixels a side (else any)."""
    spatial = [
        layer
        for layer in model.layers[1:]
        if len(layer.output.shape) == 4
        and not layer.name.startswith(("rescale", "random_", "normalize"))
    ]
    if not spatial:
        raise ValueError(f"model {model.name} has no convolutional feature map to explain")
    big = [layer for layer in spatial if min(layer.output.shape[1:3]) >= min_size]
    return (big or spatial)[-1]


def _show(ax, image: np.ndarray, title: str = "") -> None:
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(image.astype(np.uint8))
    ax.set_title(title, fontsize=7)
    ax.axis("off")


def explanation_grid(
    logits_model: keras.Model,
    images: np.ndarray,
    labels: Sequence[int],
    predicted: Sequence[int],
    class_names: Sequence[str],
    path: Path,
    smooth_samples: int = 20,
) -> Path:
    """One row per image: the image, Grad-CAM++ overlay, SmoothGrad saliency (predicted class)."""
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.utils.scores import CategoricalScore

    x = np.asarray(images, dtype=np.float32)
    score = CategoricalScore([int(p) for p in predicted])
    cams = GradcamPlusPlus(logits_model, clone=False)(
        score, x, penultimate_layer=cam_layer(logits_model), seek_penultimate_conv_layer=False
    )
    saliency = Saliency(logits_model, clone=False)(
        score, x, smooth_samples=smooth_samples, smooth_noise=0.2
    )
    rows = len(x)
    fig, axes = plt.subplots(rows, 3, figsize=(6, 2 * rows), squeeze=False)
    for i in range(rows):
        true, pred = class_names[int(labels[i])], class_names[int(predicted[i])]
        _show(axes[i, 0], images[i], f"true {true}\npredicted {pred}")
        _show(axes[i, 1], images[i], "Grad-CAM++")
        axes[i, 1].imshow(cams[i], cmap="jet", alpha=0.5, vmin=0, vmax=1)
        axes[i, 2].imshow(saliency[i], cmap="inferno", vmin=0, vmax=1)
        axes[i, 2].set_title("SmoothGrad", fontsize=7)
        axes[i, 2].axis("off")
    fig.tight_layout()
    return save_png(fig, path)


def misclassified_grid(
    images: np.ndarray,
    labels: Sequence[int],
    predicted: Sequence[int],
    probabilities: Sequence[float],
    class_names: Sequence[str],
    path: Path,
) -> Path:
    """Test images the model got wrong: true class, predicted class and its probability."""
    count = len(images)
    cols = min(8, max(1, count))
    rows = max(1, (count + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.7 * cols, 2.2 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, true, pred, prob in zip(
        axes.flat, images, labels, predicted, probabilities, strict=False
    ):
        _show(ax, image, f"{class_names[int(true)]}\n-> {class_names[int(pred)]} {prob:.2f}")
    if not count:
        axes[0, 0].text(0.5, 0.5, "no misclassified test images", ha="center", va="center")
    fig.suptitle("misclassified (true -> predicted, probability)", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.96), h_pad=1.2)
    return save_png(fig, path)
