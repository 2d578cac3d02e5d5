"""The autoencoder's export: image bytes in; anomaly scores, reconstructions (PNG) and
codes out, and images decoded from codes; batch prediction's lines."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from pipelines.autoencoder.config import AutoencoderConfig
from pipelines.core.task import DEFAULT_SIGNATURE, Serving, json_lines
from pipelines.image_input.reader import decode_images
from tfmodels.autoencoders import VariationalAutoencoder

RECONSTRUCT, ENCODE, DECODE = "reconstruct", "encode", "decode"


def signatures(
    config: AutoencoderConfig,
    model: keras.Model,
    image_size: tuple[int, int],
    channels: int,
    threshold: float,
) -> dict[str, Serving]:
    """`serving_default` (-> anomaly score, is_anomaly against `threshold`, threshold,
    reconstruction PNG, reconstruction error), `reconstruct` (-> PNG and pixels), `encode`
    (-> the code; the VAE adds its log variance) and `decode` (a code -> PNG; warmed up with
    the zero code and four random normal ones)."""
    vae = isinstance(model, VariationalAutoencoder)
    score_args = {"samples": config.serving.elbo_samples} if vae else {}

    def pixels_of(image_bytes):
        return tf.cast(decode_images(image_bytes, image_size, channels), tf.float32) / 255.0

    def serve(image_bytes):
        scored = model.score(pixels_of(image_bytes), **score_args)
        score = scored["anomaly_score"]
        return {
            "anomaly_score": score,
            "is_anomaly": score > threshold,
            "threshold": tf.fill(tf.shape(score), tf.constant(threshold, tf.float32)),
            "reconstruction": encode_pngs(scored["reconstruction"]),
            "reconstruction_error": scored["reconstruction_error"],
        }

    def reconstruct(image_bytes):
        pixels = model.reconstruct(pixels_of(image_bytes))
        return {"reconstruction": encode_pngs(pixels), "pixels": pixels}

    def encode(image_bytes):
        pixels = pixels_of(image_bytes)
        if not vae:
            return {"code": model.encode(pixels)}
        mean, log_var = model.posterior(pixels)
        return {"code": mean, "code_log_variance": log_var}

    def decode(code):
        return {"image": encode_pngs(model.decode(code))}

    images = {"image_bytes": tf.TensorSpec([None], tf.string)}
    code_size = model.code_size
    rng = np.random.default_rng(0)
    codes = [
        np.zeros(code_size, np.float32),
        *rng.standard_normal((4, code_size)).astype(np.float32),
    ]
    return {
        DEFAULT_SIGNATURE: Serving(serve, images, [model]),
        RECONSTRUCT: Serving(reconstruct, images, [model]),
        ENCODE: Serving(encode, images, [model]),
        DECODE: Serving(
            decode,
            {"code": tf.TensorSpec([None, code_size], tf.float32)},
            [model],
            warmup={"code": codes},
        ),
    }


def encode_pngs(pixels: tf.Tensor) -> tf.Tensor:
    """Pixels in [0, 1] `[N, H, W, C]` -> PNG bytes `[N]`."""
    images = tf.cast(tf.round(tf.clip_by_value(pixels, 0.0, 1.0) * 255.0), tf.uint8)
    return tf.map_fn(tf.io.encode_png, images, fn_output_signature=tf.string)


def lines_from_response(
    outputs: dict[str, np.ndarray],
    signature: str = DEFAULT_SIGNATURE,
    lines: Sequence[str] = (),
) -> list[str]:
    """`path<TAB>score<TAB>is_anomaly` (1 or 0) per image (the path as the input line
    gives it; without lines, `score<TAB>is_anomaly`); other signatures: a JSON object
    per image, PNG bytes in base64."""
    if signature == DEFAULT_SIGNATURE:
        paths = [f"{line.strip()}\t" for line in lines] or [""] * len(outputs["anomaly_score"])
        return [
            f"{path}{score:.6g}\t{int(flag)}"
            for path, score, flag in zip(
                paths, outputs["anomaly_score"], outputs["is_anomaly"], strict=True
            )
        ]
    return json_lines({k: _base64(v) if v.dtype == object else v for k, v in outputs.items()})


def _base64(values: np.ndarray) -> np.ndarray:
    return np.array(
        [base64.b64encode(bytes(v)).decode("ascii") for v in values.ravel()], dtype=object
    ).reshape(values.shape)
