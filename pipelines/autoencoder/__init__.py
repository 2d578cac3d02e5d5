"""Autoencoders on images: reconstruction, denoising, anomaly scoring (`tfpipe run autoencoder`)."""

# How `pipelines.core.registry` finds this pipeline.
TASK = "pipelines.autoencoder.task:AutoencoderTask"
