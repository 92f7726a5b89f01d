"""The trainer state stored in a checkpoint: taken from a trainer, put back into one, and validated field by
field before a resume does any work.

A checkpoint is a file a user can edit, truncate or craft. Everything in it
that the trainer will use is checked against what an uninterrupted run would
hold at that position: types and ranges, the random generators' states, the
learning rate the schedule gives there, the optimizer state momentum needs,
and one metrics row per finished epoch. A problem is one CheckpointError
naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlpkit.config.schema import Config
from mlpkit.errors import CheckpointError
from mlpkit.nn import Dropout, mask_draw_bytes
from mlpkit.training.metrics import EpochMetrics
from mlpkit.training.rngs import Rngs
from mlpkit.training.schedules import lr_at, momentum_at

if TYPE_CHECKING:
    from mlpkit.training.trainer import Trainer

MAX_EPOCH = 10_000_000
_U128 = 1 << 128


def trainer_state(trainer: Trainer) -> tuple[dict[str, np.ndarray], dict]:
    """Everything needed to continue bit-identically: arrays (weights, velocity, early stopping's best weights)
    and JSON-able data (position, generator states, the epoch's running sums, history, best epoch)."""
    arrays = {k: v.copy() for k, v in trainer.model.named_params().items()}
    arrays.update({f"optim.{k}": v for k, v in trainer.optimizer.state_dict().items()})
    best_arrays, best_meta = trainer.early_stopping.state()
    arrays.update(best_arrays)
    mid_epoch = trainer.epoch_step > 0  # then the generators' states as the epoch began: its draws repeat
    meta = {
        "epoch": trainer.epoch,
        "step": trainer.epoch_step,
        "shuffle_rng": trainer.shuffle_start if mid_epoch else trainer.rngs.shuffle.bit_generator.state,
        "dropout_rng": trainer.rngs.dropout.bit_generator.state,
        "augment_rng": trainer.augment_start if mid_epoch else trainer.rngs.augment.bit_generator.state,
        "loss_sum": trainer.loss_sum,
        "lr": trainer.optimizer.lr,
        "norm_sums": trainer.norm_sums,
        "norm_count": trainer.norm_count,
        "history": [dataclasses.asdict(m) for m in trainer.history],
        **best_meta,  # best_val_acc, best_epoch, bad_epochs
    }
    return arrays, meta


def restore_trainer(trainer: Trainer, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Put back what ``trainer_state`` took (the caller has checked names, shapes and fields)."""
    trainer.model.load_params(arrays)
    trainer.optimizer.load_state_dict({k[len("optim."):]: v for k, v in arrays.items() if k.startswith("optim.")})
    trainer.epoch, trainer.epoch_step = int(meta["epoch"]), int(meta["step"])
    trainer.rngs.shuffle.bit_generator.state = meta["shuffle_rng"]
    trainer.shuffle_start = meta["shuffle_rng"]
    trainer.rngs.dropout.bit_generator.state = meta["dropout_rng"]
    trainer.rngs.augment.bit_generator.state = meta["augment_rng"]
    trainer.augment_start = meta["augment_rng"]
    trainer.loss_sum = float(meta["loss_sum"])
    trainer.norm_sums = {k: float(v) for k, v in meta["norm_sums"].items()}
    trainer.norm_count = int(meta.get("norm_count", 0))
    trainer.history = [EpochMetrics(**m) for m in meta["history"]]
    trainer.early_stopping.load_state(arrays, meta, trainer.model.dtype)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _rng_state(v: Any) -> bool:
    """A PCG64 generator state as ``bit_generator.state`` gives it, with every field in range."""
    if not isinstance(v, dict) or set(v) != {"bit_generator", "state", "has_uint32", "uinteger"}:
        return False
    inner = v["state"]
    return (v["bit_generator"] == "PCG64" and isinstance(inner, dict) and set(inner) == {"state", "inc"}
            and _is_int(inner["state"], 0, _U128 - 1) and _is_int(inner["inc"], 0, _U128 - 1)
            and _is_int(v["has_uint32"], 0, 1) and _is_int(v["uinteger"], 0, (1 << 32) - 1))


def _history_row(row: Any, epoch: int, names: set[str]) -> str | None:
    """What is wrong with one stored metrics row, or None."""
    fields = {f.name for f in dataclasses.fields(EpochMetrics)}
    if not isinstance(row, dict) or set(row) != fields:
        return "does not have the fields of a metrics row"
    if row["epoch"] != epoch or isinstance(row["epoch"], bool):
        return f"is numbered {row['epoch']!r}, expected {epoch}"
    if not (_is_number(row["train_loss"]) and row["train_loss"] >= 0):
        return "train_loss is not a finite number >= 0"
    for k in ("train_eval_loss", "val_loss"):
        if row[k] is not None and not (_is_number(row[k]) and row[k] >= 0):
            return f"{k} is not null or a finite number >= 0"
    for k in ("train_eval_acc", "val_acc"):
        if row[k] is not None and not (_is_number(row[k]) and 0 <= row[k] <= 1):
            return f"{k} is not null or a number in [0, 1]"
    if not (_is_number(row["lr"]) and row["lr"] > 0):
        return "lr is not a number > 0"
    g = row["grad_norms"]
    if not isinstance(g, dict) or set(g) != names or not all(_is_number(v) and v >= 0 for v in g.values()):
        return "grad_norms does not hold one finite norm per parameter"
    return None


def expected_streams(trainer: Trainer, seed: int, epoch: int, step: int) -> dict[str, Mapping[str, Any]]:
    """The generator states a run of ``seed`` holds after ``epoch`` epochs and ``step`` more steps, replayed:

    - shuffle: one permutation of the training split per epoch (mid-epoch: the state as the epoch began);
    - augment: one seed drawn per epoch when the run augments (likewise);
    - dropout: each training step's masks, every Dropout layer (p > 0) in order, a batch × width draw each.
    """
    rngs = Rngs.from_seed(seed)
    n, batch = len(trainer.train_split), trainer.cfg.train.batch_size
    for _ in range(epoch):
        rngs.shuffle.permutation(n)
        if trainer.cfg.data.augment is not None:
            rngs.augment.integers(2**63)
    drops, width = [], trainer.model.in_features
    for layer in trainer.model.layers:
        if isinstance(layer, Dropout) and layer.p > 0:
            drops.append((layer.p, width))
        width = layer.out_features(width)
    if drops:
        sizes = [min(batch, n - s) for s in range(0, n, batch)]  # the epoch's batch sizes, in order
        draws = [[mask_draw_bytes(b * w, p) for p, w in drops] for b in sizes]  # bytes per layer, per step
        for k in itertools.chain(itertools.chain.from_iterable(itertools.repeat(draws, epoch)), draws[:step]):
            for nbytes in k:
                rngs.dropout.bytes(nbytes)
    return {"shuffle_rng": rngs.shuffle.bit_generator.state, "augment_rng": rngs.augment.bit_generator.state,
            "dropout_rng": rngs.dropout.bit_generator.state}


def validate_state(path: Path, state: dict, cfg: Config, trainer: Any, arrays: dict[str, np.ndarray]) -> None:
    """Raise CheckpointError unless ``state`` is what the trainer of ``cfg`` could have saved.

    ``cfg`` is the config stored with the checkpoint (before any new ``train.epochs``);
    ``trainer`` the freshly built trainer the state is for.
    """

    def bad(field: str, why: str) -> CheckpointError:
        return CheckpointError(f"{path}: trainer state {field!r} {why}")

    expected = {"epoch", "step", "shuffle_rng", "dropout_rng", "augment_rng", "loss_sum", "lr", "norm_sums",
                "norm_count", "history", "best_val_acc", "best_epoch", "bad_epochs"}
    missing, extra = expected - set(state), set(state) - expected
    if missing:
        raise bad(sorted(missing)[0], "is missing")
    if extra:
        raise bad(sorted(extra)[0][:60], "is not a field of the trainer state")
    epoch, step = state["epoch"], state["step"]
    if not _is_int(epoch, 0, min(MAX_EPOCH, cfg.train.epochs)):
        raise bad("epoch", f"must be an integer in [0, {cfg.train.epochs}] (the run's train.epochs)")
    if not _is_int(step, 0, trainer.steps_per_epoch - 1):
        raise bad("step", f"must be an integer in [0, {trainer.steps_per_epoch - 1}] (steps per epoch - 1)")
    for k in ("shuffle_rng", "dropout_rng", "augment_rng"):
        if not _rng_state(state[k]):
            raise bad(k, "is not a valid PCG64 generator state")
    if not (_is_number(state["loss_sum"]) and state["loss_sum"] >= 0):
        raise bad("loss_sum", "must be a finite number >= 0")
    # The epoch whose learning rate and momentum the optimizer holds: the current one mid-epoch,
    # the last finished one at an epoch boundary.
    current = epoch if step or epoch == 0 else epoch - 1
    want_lr = lr_at(cfg.train, current)
    if not _is_number(state["lr"]) or state["lr"] != want_lr:
        raise bad("lr", f"is {state['lr']!r} but the config's schedule gives {want_lr!r} there")
    names = set(trainer.model.named_params())
    sums = state["norm_sums"]
    if not isinstance(sums, dict) or set(sums) != names or not all(_is_number(v) and v >= 0 for v in sums.values()):
        raise bad("norm_sums", "must hold one finite number >= 0 per parameter, named as the model's")
    if not _is_int(state["norm_count"], 0, step if step else trainer.steps_per_epoch):
        raise bad("norm_count", "is not a count of this epoch's measured steps")
    history = state["history"]
    if not isinstance(history, list) or len(history) != epoch:
        raise bad("history", f"must hold one metrics row per finished epoch ({epoch})")
    for i, row in enumerate(history):
        why = _history_row(row, i + 1, names)
        if why:
            raise bad("history", f"row {i + 1} {why}")
    # The best epoch so far (best.npz, early stopping): one of the finished ones, with its accuracy.
    best, best_epoch, since = state["best_val_acc"], state["best_epoch"], state["bad_epochs"]
    if not _is_int(best_epoch, 0, epoch):
        raise bad("best_epoch", f"must be an integer in [0, {epoch}] (a finished epoch, or 0 for none)")
    if best_epoch == 0:
        if best is not None:
            raise bad("best_val_acc", "must be null when no epoch is the best yet")
    elif best != history[best_epoch - 1]["val_acc"] or best is None:
        raise bad("best_val_acc", f"is not the validation accuracy of epoch {best_epoch}")
    if not _is_int(since, 0, epoch - best_epoch if best_epoch else epoch):
        raise bad("bad_epochs", "is not a count of the epochs since the best one")
    best_arrays = {k for k in arrays if k.startswith("best.")}
    want_best = cfg.train.early_stopping is not None and best_epoch > 0
    if want_best and best_arrays != {f"best.{n}" for n in names}:
        raise CheckpointError(f"{path}: early stopping's best weights (best.*) are missing or incomplete")
    if not want_best and best_arrays:
        raise CheckpointError(f"{path}: holds best weights {sorted(best_arrays)[0]} without early stopping")
    # Momentum needs its velocity from the first step it was used on.
    used = any(momentum_at(cfg.train, e) > 0 for e in range(current + 1)) and (epoch > 0 or step > 0)
    optim = {k for k in arrays if k.startswith("optim.")}
    if used and optim != {f"optim.{n}" for n in names}:
        lost = sorted({f"optim.{n}" for n in names} - optim)
        raise CheckpointError(f"{path}: the optimizer state (momentum velocity) is missing"
                              f"{' for ' + lost[0] if lost else ''}; resuming without it would not continue the run")
    if not used and optim:
        raise CheckpointError(f"{path}: holds optimizer state {sorted(optim)[0]} for steps taken without momentum")
    # Last, once epoch and step are known good: each generator state must be the one the seed gives there.
    where = f"epoch {epoch + 1}, step {step}" if step else f"the end of epoch {epoch}"
    for k, want in expected_streams(trainer, cfg.seed, epoch, step).items():
        if state[k] != want:
            raise bad(k, f"is not the state seed {cfg.seed} gives at {where}; the checkpoint was edited or is "
                         "another run's")
