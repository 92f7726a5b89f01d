"""Learning-rate and momentum schedules: values per epoch, from the config alone.

Epochs are counted from 0 here. A schedule depends only on the epoch, so a
resumed run gets the same values as an uninterrupted one.
"""

from __future__ import annotations

import math

from mlpkit.config.schema import TrainConfig


def lr_at(t: TrainConfig, epoch: int) -> float:
    """The learning rate of (0-based) ``epoch``."""
    if t.lr_schedule == "step":
        return t.lr * t.lr_decay ** (epoch // t.lr_step)
    if t.lr_schedule == "exponential":
        return t.lr * t.lr_decay**epoch
    if t.lr_schedule == "cosine":  # PyTorch's CosineAnnealingLR with T_max = epochs: never reaches lr_min
        frac = epoch / t.epochs
        return t.lr_min + (t.lr - t.lr_min) * 0.5 * (1 + math.cos(math.pi * frac))
    return t.lr


def momentum_at(t: TrainConfig, epoch: int) -> float:
    """The momentum of (0-based) ``epoch``: ramped from momentum_start when set."""
    if t.momentum_start is None or t.momentum_ramp_epochs == 0:
        return t.momentum
    frac = min(epoch / t.momentum_ramp_epochs, 1.0)
    return t.momentum_start + (t.momentum - t.momentum_start) * frac
