"""Stopping a run at a chosen step, the way an interrupted process leaves it, for the resume tests."""

from __future__ import annotations

from pathlib import Path

from mlpkit.app.rundir import RunWriter
from mlpkit.training.trainer import Trainer


def stop_run_at(trainer: Trainer, run: Path, stop_at: tuple[int, int]) -> None:
    """Train into ``run`` until (epoch, step) — step 0: the end of the epoch before — with a checkpoint there."""
    writer = RunWriter(run, trainer.cfg)

    def after_step(tr):
        if (tr.epoch + 1, tr.epoch_step) == stop_at:
            writer.checkpoint(tr)
            return True
        return False

    if stop_at[1] == 0:  # an epoch boundary: the epoch-end checkpoint
        while trainer.epoch < stop_at[0] - 1:
            trainer.train_epoch()
            writer.epoch_done(trainer, 0.0)
    else:
        while trainer.train_epoch(after_step=after_step) is not None:
            writer.epoch_done(trainer, 0.0)
    writer.close()
