"""Chinese word segmentation: a stacked BiLSTM character tagger (B/M/E/S)."""

# How `pipelines.core.registry` finds this pipeline.
TASK = "pipelines.segmentation.task:SegmentationTask"
