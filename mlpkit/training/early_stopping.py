"""The best epoch so far and early stopping (Keras's ``EarlyStopping`` on the validation accuracy).

Every run with a validation split tracks its best epoch (``checkpoints/best.npz`` is written when it
improves); with ``train.early_stopping`` the run also stops after ``patience`` epochs without a gain of
more than ``min_delta``, and its final weights are the best epoch's (``restore_best_weights``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlpkit.config.schema import EarlyStoppingConfig
from mlpkit.nn.model import MLP
from mlpkit.training.metrics import EpochMetrics


@dataclass(frozen=True)
class EarlyStop:
    """How early stopping ended a run; the final weights are those of ``best_epoch``."""

    best_epoch: int
    best_val_acc: float
    epochs_trained: int
    stopped_early: bool  # patience ran out before train.epochs


class EarlyStopping:
    """Tracks the best validation accuracy; with a config, counts epochs without gain and keeps the best weights."""

    def __init__(self, cfg: EarlyStoppingConfig | None) -> None:
        self.cfg = cfg
        self.best_val_acc: float | None = None
        self.best_epoch = 0
        self.bad_epochs = 0  # epochs since the best one
        self.improved = False  # whether the last finished epoch set a new best
        self.best_params: dict[str, np.ndarray] | None = None  # kept with early stopping only

    def update(self, m: EpochMetrics, model: MLP) -> None:
        """A new best validation accuracy (by more than min_delta), or one more epoch without."""
        self.improved = m.val_acc is not None and (
            self.best_val_acc is None or m.val_acc > self.best_val_acc + (self.cfg.min_delta if self.cfg else 0.0))
        if self.improved:
            self.best_val_acc, self.best_epoch, self.bad_epochs = m.val_acc, m.epoch, 0
            if self.cfg is not None:
                self.best_params = {k: v.copy() for k, v in model.named_params().items()}
        elif m.val_acc is not None:
            self.bad_epochs += 1

    @property
    def stopped(self) -> bool:
        """Patience has run out: no more epochs."""
        return self.cfg is not None and self.bad_epochs >= self.cfg.patience

    def restore_best(self, model: MLP) -> bool:
        """With early stopping, put the best epoch's weights back into the model; returns whether it did."""
        if self.cfg is None or self.best_params is None:
            return False
        model.load_params(self.best_params)
        return True

    def summary(self, epochs_trained: int) -> EarlyStop | None:
        """What early stopping did, for the output and results.json (None when it is off)."""
        if self.cfg is None or self.best_val_acc is None:
            return None
        return EarlyStop(self.best_epoch, self.best_val_acc, epochs_trained, self.stopped)

    # -- checkpoints -------------------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        arrays = {f"best.{k}": v.copy() for k, v in (self.best_params or {}).items()}
        return arrays, {"best_val_acc": self.best_val_acc, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict, dtype: np.dtype) -> None:
        self.best_val_acc, self.best_epoch = meta["best_val_acc"], int(meta["best_epoch"])
        self.bad_epochs = int(meta["bad_epochs"])
        best = {k[len("best."):]: v for k, v in arrays.items() if k.startswith("best.")}
        self.best_params = {k: v.astype(dtype) for k, v in best.items()} or None
