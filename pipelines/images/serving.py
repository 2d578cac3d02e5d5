"""The image classifier's export: encoded image bytes (any size, grey or colour) in, labels
and probabilities (or the features the last layer reads) out; batch prediction's lines."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from pipelines.core.task import DEFAULT_SIGNATURE, Serving, json_lines
from pipelines.image_input.reader import decode_images
from pipelines.images.config import ImagesConfig

EMBEDDING = "embedding"


def signatures(
    config: ImagesConfig,
    model: keras.Model,
    class_names: Sequence[str],
    image_size: tuple[int, int],
    channels: int,
) -> dict[str, Serving]:
    """`serving_default`: labels and probabilities; `embedding`: the features the
    classifier's last layer reads (for similarity search, clustering, new heads)."""
    height, width = image_size
    class_names = list(class_names)
    k = max(1, min(config.serving.top_k, len(class_names)))
    tta_flip = config.serving.tta_flip
    features = keras.Model(
        model.inputs, model.get_layer("logits").input, name=f"{model.name}_features"
    )

    def pixels_of(image_bytes):
        return tf.cast(decode_images(image_bytes, (height, width), channels), tf.float32)

    def serve(image_bytes):
        pixels = pixels_of(image_bytes)
        probabilities = tf.cast(model(pixels, training=False), tf.float32)
        if tta_flip:
            mirrored = model(tf.image.flip_left_right(pixels), training=False)
            probabilities = (probabilities + tf.cast(mirrored, tf.float32)) / 2
        top_p, top_i = tf.math.top_k(probabilities, k=k)
        top_labels = tf.gather(tf.constant(class_names), top_i)
        return {
            "label": top_labels[:, 0],
            "probability": top_p[:, 0],
            "class_id": top_i[:, 0],
            "top_k_labels": top_labels,
            "top_k_probabilities": top_p,
        }

    def embed(image_bytes):
        return {"embedding": tf.cast(features(pixels_of(image_bytes), training=False), tf.float32)}

    inputs = {"image_bytes": tf.TensorSpec([None], tf.string)}
    return {
        DEFAULT_SIGNATURE: Serving(serve, inputs, [model]),
        EMBEDDING: Serving(embed, inputs, [model, features]),
    }


def lines_from_response(
    outputs: dict[str, np.ndarray],
    signature: str = DEFAULT_SIGNATURE,
    lines: Sequence[str] = (),
) -> list[str]:
    """`label<TAB>probability` per image (other signatures: JSON per image)."""
    if signature != DEFAULT_SIGNATURE:
        return json_lines(outputs)
    return [
        f"{label.decode('utf-8') if isinstance(label, bytes) else label}\t{p:.4f}"
        for label, p in zip(outputs["label"], outputs["probability"], strict=True)
    ]
