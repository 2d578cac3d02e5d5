"""Image input shared by the pipelines that read images (`images`, `autoencoder`): folders,
archives and TFRecord shards read, decoded and cached, and the shared augmentation helpers."""
