"""Autoencoders on images: reconstruction, denoising, anomaly scoring (`tfpipe run autoencoder`)."""
