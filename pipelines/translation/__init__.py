"""Machine translation: subword vocabularies, Transformer and RNN-attention models."""
