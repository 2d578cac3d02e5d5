"""Learning-rate schedules from config: warm-up, Keras' exponential decay, and the
exponential and cosine decays paced by the time budget."""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest

from pipelines.core.callbacks import TrainingClock
from pipelines.core.config import ScheduleConfig
from pipelines.core.schedules import (
    TimeBudgetCosineDecay,
    TimeBudgetDecay,
    WarmUp,
    build_schedule,
    time_budget,
)


def test_exponential_follows_the_formula_after_warm_up():
    cfg = ScheduleConfig(name="exponential", decay_rate=0.5, decay_steps=10, warmup_steps=4)
    schedule = build_schedule(cfg, 0.1, total_steps=100)
    assert isinstance(schedule, WarmUp)
    lr = [float(schedule(step)) for step in (0, 3, 4, 14, 24)]
    assert lr[0] == pytest.approx(0.1 / 4) and lr[1] == pytest.approx(0.1)
    assert lr[2:] == pytest.approx([0.1, 0.05, 0.025])


def test_budget_decay_is_paced_by_the_share_of_the_budget_spent():
    schedule = build_schedule(
        ScheduleConfig(name="exponential_budget", decay_rate=0.01), 0.2, total_steps=100
    )
    budget = time_budget(schedule)
    assert isinstance(budget, TimeBudgetDecay)
    assert float(schedule(1000)) == pytest.approx(0.2)  # the step count does not matter
    budget.budget_used.assign(0.5)
    assert float(schedule(0)) == pytest.approx(0.2 * 0.1)
    budget.budget_used.assign(1.0)
    assert float(schedule(0)) == pytest.approx(0.2 * 0.01)


def test_cosine_budget_follows_keras_cosine_over_the_budget_behind_a_warm_up():
    cfg = ScheduleConfig(name="cosine_budget", alpha=0.05, warmup_steps=10)
    schedule = build_schedule(cfg, 4e-3, total_steps=100)
    budget = time_budget(schedule)
    assert isinstance(schedule, WarmUp) and isinstance(budget, TimeBudgetCosineDecay)
    keras_cosine = keras.optimizers.schedules.CosineDecay(4e-3, decay_steps=100, alpha=0.05)
    for used in (0.0, 0.25, 0.5, 0.9, 1.0, 1.5):
        budget.budget_used.assign(used)
        assert float(schedule(50)) == pytest.approx(float(keras_cosine(min(used, 1.0) * 100)))
    assert float(schedule(4)) == pytest.approx(float(keras_cosine(100)) * 5 / 10)  # warm-up
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(budget))
    assert isinstance(clone, TimeBudgetCosineDecay) and clone.alpha == 0.05


def test_time_limit_moves_the_budget_and_stops_training():
    schedule = TimeBudgetDecay(0.1, 0.01)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")

    class Slow(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            time.sleep(0.05)

    x, y = np.ones((64, 2), np.float32), np.ones((64, 1), np.float32)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=100,
        verbose=0,
        callbacks=[TrainingClock(1.5 / 60, schedule.budget_used), Slow(), Record()],
    )
    assert len(history.epoch) < 100  # stopped by the 1.5-second budget
    assert seen == sorted(seen, reverse=True) and seen[-1] < 0.1 * 0.2
