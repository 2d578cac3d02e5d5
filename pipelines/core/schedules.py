"""Learning-rate schedules from config: Keras schedules, plus a linear warm-up in front."""

from __future__ import annotations

import math

import keras

from pipelines.core.config import ConfigError, ScheduleConfig


@keras.saving.register_keras_serializable(package="tfpipelines")
class WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to the schedule's first value over `warmup_steps` steps."""

    def __init__(
        self, schedule: keras.optimizers.schedules.LearningRateSchedule, warmup_steps: int
    ):
        self.schedule = schedule
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = keras.ops.cast(self.warmup_steps, "float32")
        after = self.schedule(keras.ops.maximum(step - warm, 0.0))
        ramp = self.schedule(0) * (step + 1.0) / keras.ops.maximum(warm, 1.0)
        return keras.ops.where(step < warm, ramp, after)

    def get_config(self):
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "warmup_steps": self.warmup_steps,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)


class TimeBudgetSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A schedule paced by wall time, not steps: `budget_used` (0 to 1) is the share of the
    time budget (`train.max_minutes`) spent so far, which `callbacks.TrainingClock` sets every
    batch.

    A step-paced decay sized for the epochs that should fit the budget leaves the rate
    high when a slower machine (or a slow spell on a shared one) hits the budget first;
    these reach their final rate when the budget ends, however fast the steps went.
    """

    def __init__(self, initial_learning_rate: float):
        self.initial_learning_rate = float(initial_learning_rate)
        self.budget_used = keras.Variable(0.0, dtype="float32", trainable=False, name="budget_used")

    def used(self):
        return keras.ops.clip(keras.ops.convert_to_tensor(self.budget_used), 0.0, 1.0)


@keras.saving.register_keras_serializable(package="tfpipelines")
class TimeBudgetDecay(TimeBudgetSchedule):
    """Exponential decay over the time budget: `lr = initial * decay_rate ** used`."""

    def __init__(self, initial_learning_rate: float, decay_rate: float):
        super().__init__(initial_learning_rate)
        self.decay_rate = float(decay_rate)

    def __call__(self, step):
        return self.initial_learning_rate * keras.ops.power(self.decay_rate, self.used())

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "decay_rate": self.decay_rate}


@keras.saving.register_keras_serializable(package="tfpipelines")
class TimeBudgetCosineDecay(TimeBudgetSchedule):
    """Cosine decay over the time budget, to `alpha` times the initial rate (as Keras'
    `CosineDecay` does over its steps)."""

    def __init__(self, initial_learning_rate: float, alpha: float = 0.0):
        super().__init__(initial_learning_rate)
        self.alpha = float(alpha)

    def __call__(self, step):
        cosine = 0.5 * (1.0 + keras.ops.cos(math.pi * self.used()))
        return self.initial_learning_rate * (self.alpha + (1.0 - self.alpha) * cosine)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "alpha": self.alpha}


def time_budget(schedule) -> TimeBudgetSchedule | None:
    """The time-paced schedule in `schedule` (maybe behind a warm-up), or None."""
    if isinstance(schedule, WarmUp):
        schedule = schedule.schedule
    return schedule if isinstance(schedule, TimeBudgetSchedule) else None


def build_schedule(cfg: ScheduleConfig, learning_rate: float, total_steps: int):
    """A float (constant) or a Keras schedule. `total_steps` sizes the cosine decay."""
    if cfg.name == "constant":
        schedule = None
    elif cfg.name == "exponential":
        schedule = keras.optimizers.schedules.ExponentialDecay(
            learning_rate,
            decay_steps=cfg.decay_steps,
            decay_rate=cfg.decay_rate,
            staircase=cfg.staircase,
        )
    elif cfg.name == "exponential_budget":
        schedule = TimeBudgetDecay(learning_rate, cfg.decay_rate)
    elif cfg.name == "cosine_budget":
        schedule = TimeBudgetCosineDecay(learning_rate, cfg.alpha)
    elif cfg.name == "cosine":
        schedule = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=max(1, total_steps - cfg.warmup_steps), alpha=cfg.alpha
        )
    else:
        raise ConfigError(
            f"train.schedule.name: unknown schedule '{cfg.name}' "
            "(constant, exponential, exponential_budget, cosine, cosine_budget)"
        )
    if schedule is None:
        if cfg.warmup_steps <= 0:
            return learning_rate
        schedule = keras.optimizers.schedules.PolynomialDecay(learning_rate, 1, learning_rate)
    return WarmUp(schedule, cfg.warmup_steps) if cfg.warmup_steps > 0 else schedule


def build_optimizer(
    name: str,
    learning_rate,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    clipnorm: float = 0.0,
    ema: float = 0.0,
) -> keras.optimizers.Optimizer:
    kwargs = {"learning_rate": learning_rate}
    if clipnorm > 0:
        kwargs["clipnorm"] = clipnorm
    if ema > 0:
        kwargs.update(use_ema=True, ema_momentum=ema)
    if name == "adam":
        return keras.optimizers.Adam(**kwargs)
    if name == "adamw":
        return keras.optimizers.AdamW(weight_decay=weight_decay or 1e-4, **kwargs)
    if name == "sgd":
        return keras.optimizers.SGD(
            momentum=momentum, nesterov=True, weight_decay=weight_decay or None, **kwargs
        )
    if name == "rmsprop":
        return keras.optimizers.RMSprop(**kwargs)
    raise ConfigError(f"train.optimizer: unknown optimizer '{name}' (adam, adamw, sgd, rmsprop)")
