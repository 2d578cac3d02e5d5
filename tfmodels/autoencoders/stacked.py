"""Stacked autoencoder: greedy layer-wise pretraining, then fine-tuning of the whole stack.

Phase k (k < number of pairs) trains pair k alone to rebuild its input, the features of the
pairs before it, which are frozen (pair 0 rebuilds the image); the last phase fine-tunes
every layer on the image. `LayerwisePretraining` moves the model from phase to phase by
epoch (`epochs_per_pair` each) and puts `phase` into each epoch's logs, so a tracked run
shows its phases. The phase follows from the epoch alone, which a resumed run restores, so
nothing else needs checkpointing.

Freezing is done the Keras way: the other pairs' layers are set not trainable and the
training step is traced again, so they get no update at all (not even the optimizer's
momentum from an earlier phase), and the optimizer, built once for every weight, keeps its
state for the fine-tuning.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfmodels.autoencoders import losses
from tfmodels.autoencoders.autoencoder import Autoencoder
from tfmodels.autoencoders.blocks import Pair, chain


class StackedAutoencoder(Autoencoder):
    """An `Autoencoder` made of `pairs`, trained pair by pair, then as a whole."""

    def __init__(self, pairs: list[Pair], *, epochs_per_pair: int = 1, **kwargs):
        super().__init__(
            chain([p.encoder for p in pairs], "encoder"),
            chain([p.decoder for p in reversed(pairs)], "decoder"),
            **kwargs,
        )
        self.encoder_blocks = [p.encoder for p in pairs]
        self.decoder_blocks = [p.decoder for p in pairs]
        self.epochs_per_pair = int(epochs_per_pair)
        self.active_phase = len(pairs)  # built as a plain autoencoder: all of it trains

    @property
    def fine_tuning_phase(self) -> int:
        return len(self.encoder_blocks)

    def phase_of_epoch(self, epoch: int) -> int:
        return min(epoch // max(self.epochs_per_pair, 1), self.fine_tuning_phase)

    def set_phase(self, phase: int) -> None:
        """Train pair `phase` alone (the fine-tuning phase: everything), tracing the
        training step again if the phase changed."""
        phase = min(int(phase), self.fine_tuning_phase)
        if phase == self.active_phase:
            return
        self.active_phase = phase
        for index, (encoder, decoder) in enumerate(
            zip(self.encoder_blocks, self.decoder_blocks, strict=True)
        ):
            encoder.trainable = decoder.trainable = phase in (index, self.fine_tuning_phase)
        if getattr(self, "compiled", False):
            self.make_train_function(force=True)

    def pair_loss(self, x, index: int) -> tf.Tensor:
        """Pair `index` rebuilding its input: the image for pair 0 (the model's
        reconstruction loss), else the frozen earlier pairs' features (squared error)."""
        features = self.prepare(x)
        for block in self.encoder_blocks[:index]:
            features = tf.stop_gradient(block(features, training=False))
        code = self.encoder_blocks[index](features, training=True)
        rebuilt = self.decoder_blocks[index](code, training=True)
        if index == 0:
            return losses.replica_mean(self.reconstruction_error(features, rebuilt))
        return losses.replica_mean(losses.squared_error(features, rebuilt))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """In a pretraining phase, the active pair's loss (the whole model's reconstruction
        is still tracked); otherwise, and in evaluation, the whole model's."""
        if training and self.active_phase < self.fine_tuning_phase:
            target = self.prepare(x)
            self.reconstruction_tracker.update_state(
                self.reconstruction_error(target, y_pred["reconstruction"])
            )
            return self.pair_loss(x, self.active_phase)
        return super().compute_loss(x, y, y_pred, sample_weight, training)


class LayerwisePretraining(keras.callbacks.Callback):
    """Moves a `StackedAutoencoder` through its phases by epoch; logs `phase` (0, 1, ...
    for the pairs, then the fine-tuning phase)."""

    def on_train_begin(self, logs=None) -> None:
        # The optimizer must know every weight before the first phase trains only a few.
        optimizer = self.model.optimizer
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.model.set_phase(self.model.phase_of_epoch(epoch))

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if logs is not None:
            logs["phase"] = float(self.model.active_phase)

    def on_train_end(self, logs=None) -> None:
        # Leave every layer trainable, as the model is used (and kept) after training.
        self.model.set_phase(self.model.fine_tuning_phase)
