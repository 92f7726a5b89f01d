"""The library functions the commands call: config and data in, plain results out.

This module holds a run's life (prepare, train, resume, evaluate) and re-exports the rest of the
programmatic surface from the modules that implement it: data sources (``sources``), prediction
(``predict``), export (``export``), augmentation previews (``preview``) and saved weights (``runfiles``).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlpkit.app.configfile import load_config, resume_epochs
from mlpkit.app.export import Exported, export_run
from mlpkit.app.predict import Guess, Prediction, Predictions, predict
from mlpkit.app.preview import (
    ClassPreview,
    Preview,
    is_config,
    preview_augment,
    preview_classes,
    preview_classes_png,
    preview_png,
)
from mlpkit.app.rundir import RunWriter, data_record, default_run_dir, prepare_run_dir
from mlpkit.app.runfiles import (
    CHECKPOINTS,
    Checkpoint,
    Saved,
    check_checkpoint_fits,
    load_weights,
    read_checkpoint,
)
from mlpkit.app.sources import DataSource, Downloaded, download_dataset, load_data_for
from mlpkit.config.schema import Config, with_train
from mlpkit.data.core import prepare_splits, select_split
from mlpkit.diagnostics.gradprofile import describe_model
from mlpkit.errors import CheckpointError, ConfigError, DivergenceError, Interrupted
from mlpkit.nn.model import MLP
from mlpkit.training.build import build_model, check_model_fits_data, check_size, summarize_config
from mlpkit.training.checkpoints import restore_trainer
from mlpkit.training.evaluate import evaluate
from mlpkit.training.metrics import EpochMetrics, EvalResult, StepInfo
from mlpkit.training.threads import blas_threads
from mlpkit.training.trainer import Stopped, Trainer, TrainResult, early_stop_summary, fit

__all__ = [
    "ClassPreview",
    "DataSource",
    "Downloaded",
    "DryRun",
    "Exported",
    "Guess",
    "Prediction",
    "Predictions",
    "Preview",
    "ResumePlan",
    "check_resume",
    "download_dataset",
    "dry_run",
    "evaluate_run",
    "examples_of",
    "export_run",
    "inspected",
    "is_config",
    "is_run_path",
    "load_data_for",
    "load_weights",
    "predict",
    "prepare",
    "preview_augment",
    "preview_classes",
    "preview_classes_png",
    "preview_png",
    "resume",
    "start_run",
    "train_epochs",
    "train_run",
    "trainer_for",
]


def prepare(config: str | Path, overrides: tuple[str, ...] = (), data: DataSource | str | None = None) -> Trainer:
    """Validate the config, load its data and build the trainer (model, optimizer, rngs)."""
    cfg = load_config(config, overrides)
    return Trainer(cfg, load_data_for(cfg, data))


@dataclass(frozen=True)
class DryRun:
    """What ``train --dry-run`` found: the config, data and model are valid."""

    valid: bool
    num_params: int
    steps_per_epoch: int
    epochs: int
    summary: list[tuple[str, str, str, int]]
    in_features: int


def dry_run(cfg: Config, data: DataSource | str | None = None) -> DryRun:
    """Validate config, data and model size without allocating the model or writing anything."""
    ds = load_data_for(cfg, data)
    check_model_fits_data(cfg, ds.num_classes)
    n = check_size(cfg.model, ds.num_features)
    _, train, _ = prepare_splits(ds, cfg.data.validation, False)
    steps = -(-len(train) // cfg.train.batch_size)
    return DryRun(True, n, steps, cfg.train.epochs, summarize_config(cfg.model, ds.num_features), ds.num_features)


def start_run(config: str | Path, overrides: tuple[str, ...] = (), out: str | Path | None = None,
              data: DataSource | str | None = None, *, force: bool = False,
              init_from: str | Path | None = None) -> tuple[Trainer, RunWriter]:
    """A new run: the config validated, the run folder proven writable, then the data loaded.

    ``force`` replaces a run already in ``out``; without it such a folder is refused. ``init_from`` (a run
    folder, ``RUN/best``, ``RUN/last`` or a weights file) gives the initial weights instead of the config's
    initializer: fine-tuning at a new learning rate, or from the best epoch. Its layers must match the config's.
    """
    cfg = load_config(config, overrides)
    if cfg.train.tensorboard:
        from mlpkit.app.tbevents import require_tensorboard

        require_tensorboard()  # before any work: a missing package is one line, not a failure at epoch 1
    start = load_weights(init_from, dtype=cfg.model.dtype) if init_from is not None else None
    if start is not None:  # the shapes checked before any folder is made or data read
        _check_fits(build_model(cfg.model, start.model.in_features, np.random.default_rng(0)), start, init_from)
    run_dir = out if out is not None else default_run_dir(config)
    prepare_run_dir(run_dir, force=force)  # an unwritable or occupied folder is reported before any work
    trainer = Trainer(cfg, load_data_for(cfg, data))
    if start is not None:
        _load_initial_weights(trainer, start, init_from)
    writer = RunWriter(run_dir, cfg, force=force, data=data_record(cfg, trainer.data), source=str(config),
                       init_from=None if start is None else str(start.path.resolve()))
    return trainer, writer


def _check_fits(model: MLP, start: Saved, init_from: str | Path | None) -> None:
    """Refuse saved weights of another shape than ``model``'s, naming the first parameter that differs."""
    own, theirs = model.named_params(), start.model.named_params()
    for name in sorted(set(own) | set(theirs)):
        if name not in own or name not in theirs or own[name].shape != theirs[name].shape:
            mine = own[name].shape if name in own else "absent"
            other = theirs[name].shape if name in theirs else "absent"
            raise ConfigError(f"--init-from {init_from}: its model ({describe_model(start.model)}) does not fit this "
                              f"config's ({describe_model(model)}): {name} is {other} there and {mine} here")


def _load_initial_weights(trainer: Trainer, start: Saved, init_from: str | Path | None) -> None:
    """Copy a saved model's weights into a new run's model (checked again: the data sets the input width)."""
    _check_fits(trainer.model, start, init_from)
    trainer.model.load_params(start.model.named_params())


def train_run(
    trainer: Trainer,
    out: str | Path | RunWriter | None,
    *,
    on_step: Callable[[StepInfo], None] | None = None,
    on_epoch: Callable[[EpochMetrics, float], None] | None = None,
    checkpoint_every: int = 0,
    stop_requested: Callable[[], int] | None = None,
) -> TrainResult:
    """Train to the configured epochs, writing the run folder ``out`` as it goes.

    Checkpoints go to ``checkpoints/last.npz`` after every epoch and every
    ``checkpoint_every`` steps. ``stop_requested()`` is polled after each step;
    a nonzero value (the signal number) stops at the end of that step, after a
    checkpoint.

    Raises:
        Interrupted: stopped on request; the run can be resumed.
        DivergenceError: NaN/inf loss or gradient; the last good checkpoint is kept.
    """
    writer = out if isinstance(out, RunWriter) or out is None else RunWriter(out, trainer.cfg)

    def after_step(t: Trainer) -> bool:
        stop = bool(stop_requested and stop_requested())
        if writer is not None and (stop or (checkpoint_every and t.epoch_step % checkpoint_every == 0)):
            writer.checkpoint(t)
        return stop

    def _epoch(m: EpochMetrics, seconds: float) -> None:
        if writer is not None:
            writer.epoch_done(trainer, seconds)
        if on_epoch is not None:
            on_epoch(m, seconds)
        if stop_requested and stop_requested() and trainer.epoch < trainer.cfg.train.epochs:
            raise Stopped()

    try:
        times, test = fit(trainer, on_step=on_step, on_epoch=_epoch, after_step=after_step)
        stop = early_stop_summary(trainer)
        result = TrainResult(list(trainer.history), test, str(writer.path) if writer else None, times,
                             trainer.model.num_params, stop)
        if writer is not None:
            writer.finish(trainer.model, {"test": test, "epochs": trainer.epoch, "num_params": result.num_params,
                                          "early_stopping": stop})
        return result
    except Stopped:
        if writer is not None:
            writer.set_status("interrupted")
        sig = stop_requested() if stop_requested else 0
        where = f"epoch {trainer.epoch + 1}, step {trainer.epoch_step}" if trainer.epoch_step else f"the end of epoch {trainer.epoch}"
        saved = f"checkpoint saved to {writer.last_checkpoint}; resume with: mlpkit train --resume " \
            f"{shlex.quote(str(writer.path))}" \
            if writer is not None else "nothing saved (no run folder)"
        raise Interrupted(f"interrupted at {where}; {saved}", 128 + sig if sig else 130) from None
    except DivergenceError as e:
        if writer is not None:
            writer.set_status("diverged", reason=str(e))
        if writer is not None and writer.last_checkpoint.is_file():
            raise DivergenceError(f"{e}; the last good checkpoint is kept in {writer.last_checkpoint}") from None
        if writer is not None:
            raise DivergenceError(f"{e}; no checkpoint had been written yet") from None
        raise
    finally:
        if writer is not None:
            writer.close()


@dataclass(frozen=True)
class ResumePlan:
    """A checkpoint checked for resuming: where the run stands, and what to warn about."""

    run: str
    checkpoint: str
    epoch: int  # epochs finished
    step: int  # steps done in the next epoch
    epochs: int  # the run's train.epochs (after any --set train.epochs)
    warnings: list[str]


def check_resume(run: str | Path, data: DataSource | str | None = None, overrides: tuple[str, ...] = ()
                 ) -> tuple[Trainer, Checkpoint, ResumePlan]:
    """Everything a resume needs, read and checked, with nothing written: the checkpoint's arrays and
    trainer state against the rebuilt model and its schema, and the trainer restored from them.

    ``overrides`` may only be ``train.epochs=N`` (raise or lower the run's epochs).
    """
    epochs = resume_epochs(overrides)
    ck = read_checkpoint(run)
    cfg = with_train(ck.cfg, epochs=epochs) if epochs is not None else ck.cfg
    trainer = Trainer(cfg, load_data_for(cfg, data, stored=True, record=ck.data))
    check_checkpoint_fits(ck, trainer)
    try:
        restore_trainer(trainer, ck.arrays, ck.state)
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise CheckpointError(f"{ck.path}: its trainer state cannot be restored ({type(e).__name__})") from None
    warnings = []
    now = blas_threads()
    if ck.blas_threads is not None and now is not None and ck.blas_threads != now:
        warnings.append(f"the run was checkpointed with {ck.blas_threads} BLAS thread(s) and resumes with {now}: "
                        f"it continues correctly, but not bit-identically to an uninterrupted run (set "
                        f"OPENBLAS_NUM_THREADS={ck.blas_threads} for that)")
    run_dir = ck.path.parent.parent if ck.path.parent.name == CHECKPOINTS else ck.path.parent
    complete = (run_dir / "model.npz").is_file()  # else a kill after the last checkpoint: resume writes the rest
    if complete and trainer.epoch_step == 0 and (trainer.epoch >= cfg.train.epochs or trainer.stopped_early):
        why = (f"stopped early at epoch {trainer.epoch} (its validation accuracy stopped improving)"
               if trainer.stopped_early and trainer.epoch < cfg.train.epochs
               else f"has finished all {cfg.train.epochs} of its epochs")
        raise ConfigError(f"{run_dir}: {why}, so there is nothing to resume; train it longer with --resume {run_dir} "
                          f"--epochs N (N > {trainer.epoch}), or start a new run from its weights with "
                          f"mlpkit train CONFIG --init-from {run_dir}")
    plan = ResumePlan(str(run_dir), str(ck.path), trainer.epoch, trainer.epoch_step, cfg.train.epochs, warnings)
    return trainer, ck, plan


def resume(run: str | Path, data: DataSource | str | None = None, overrides: tuple[str, ...] = ()
           ) -> tuple[Trainer, RunWriter, ResumePlan]:
    """The trainer and run writer of an interrupted run, restored from its last checkpoint."""
    trainer, _, plan = check_resume(run, data, overrides)
    writer = RunWriter(plan.run, trainer.cfg, resume=True, data=data_record(trainer.cfg, trainer.data))
    writer.write_metrics(trainer.history)  # metrics.jsonl agrees with the checkpoint
    return trainer, writer, plan


def is_run_path(target: str | Path) -> bool:
    """A run folder or weights file, as opposed to a YAML config."""
    p = Path(target)
    return p.is_dir() or p.suffix == ".npz"


def trainer_for(target: str | Path, overrides: tuple[str, ...] = (), data: DataSource | str | None = None) -> Trainer:
    """A trainer from a config, or one holding a saved run's weights."""
    return inspected(target, overrides, data)[0]


def inspected(target: str | Path, overrides: tuple[str, ...] = (), data: DataSource | str | None = None
              ) -> tuple[Trainer, bool]:
    """``trainer_for``, and whether the trainer's epoch is known: a config's is (0); saved weights' only where the
    file proves it (``Saved.epoch``), else the trainer starts at 0 and labels should say "unknown"."""
    if not is_run_path(target):
        return prepare(target, overrides, data), True
    if overrides:
        raise ConfigError(f"{target}: --set applies to configs, not to saved runs")
    saved = load_weights(target)
    trainer = Trainer(saved.cfg, load_data_for(saved.cfg, data, stored=True, record=saved.data))
    trainer.model.load_params(saved.model.named_params())
    trainer.epoch = saved.epoch or 0  # the weights' age, for labels ("trained weights, epoch N")
    return trainer, saved.epoch is not None


def train_epochs(trainer: Trainer, epochs: int, on_step: Callable[[StepInfo], None] | None = None) -> None:
    """Train ``epochs`` more epochs in memory (no run folder), e.g. before an inspection."""
    for _ in range(epochs):
        trainer.train_epoch(on_step)


def examples_of(trainer: Trainer, split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` examples of a split as model inputs and labels."""
    d = trainer.data
    s = select_split(split, trainer.train_split, trainer.val_split, d.test)
    if s is None:
        raise ConfigError(f"{d.name}: there is no validation split (data.validation is 0); use --split test")
    return d.inputs(s, n, trainer.model.dtype)


def evaluate_run(run: str | Path, split: str = "test", source: DataSource | str | None = None
                 ) -> tuple[EvalResult, Path]:
    """Score a saved run folder or weights file on one split of its dataset."""
    saved = load_weights(run)
    cfg, model, path = saved.cfg, saved.model, saved.path
    # Normalized with the training split's statistics, as when the run was trained.
    data, train, val = prepare_splits(load_data_for(cfg, source, stored=True, record=saved.data), cfg.data.validation,
                                      cfg.data.normalize)
    s = select_split(split, train, val, data.test)
    if s is None:
        raise ConfigError(f"{path}: the run held out no validation split (data.validation is 0)")
    if data.num_features != model.in_features:
        raise CheckpointError(
            f"{path}: the model takes {model.in_features} inputs but {data.name} has {data.num_features} features"
        )
    return evaluate(model, s, data.scale, data.num_classes, split, data.class_names, data.shift), path
