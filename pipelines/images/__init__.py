"""Image classification: image folders or TFRecords in, a Keras classifier, image bytes out."""

# How `pipelines.core.registry` finds this pipeline.
TASK = "pipelines.images.task:ImagesTask"
