"""Machine translation: subword vocabularies, Transformer and RNN-attention models."""

# How `pipelines.core.registry` finds this pipeline.
TASK = "pipelines.translation.task:TranslationTask"
