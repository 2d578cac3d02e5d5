"""Speech recognition (CTC): WAV decoding in the graph, manifests, FSDD digits, WER/CER."""

# How `pipelines.core.registry` finds this pipeline.
TASK = "pipelines.speech.task:SpeechTask"
