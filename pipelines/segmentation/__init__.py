"""Chinese word segmentation: a stacked BiLSTM character tagger (B/M/E/S)."""
