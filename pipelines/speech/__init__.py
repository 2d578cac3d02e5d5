"""Speech recognition (CTC): WAV decoding in the graph, manifests, FSDD digits, WER/CER."""
