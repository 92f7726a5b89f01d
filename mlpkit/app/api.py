"""The library functions the commands call: config and data in, plain results out."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.train.build import check_model_fits_data, check_size, summarize_config
from mlpkit.config.schema import Config, with_train
from mlpkit.app.configfile import load_config, resume_epochs
from mlpkit.train.threads import blas_threads
from mlpkit.data.registry import DATA_DIR_ENV, REGISTRY, is_path_dataset
from mlpkit.data.core import Dataset, prepare_splits, select_split
from mlpkit.data.cache import ensure_idx_dataset
from mlpkit.data.load import load_dataset
from mlpkit.data.download import Progress
from mlpkit.data.folders import FolderOptions
from mlpkit.errors import CheckpointError, ConfigError, DataError, DivergenceError, Interrupted
from mlpkit.app.runfiles import CHECKPOINTS, Checkpoint, check_checkpoint_fits, load_weights, read_checkpoint
from mlpkit.app.rundir import RunWriter, data_record, default_run_dir, prepare_run_dir
from mlpkit.train.metrics import EpochMetrics, EvalResult, StepInfo
from mlpkit.train.trainer import Stopped, Trainer, TrainResult, early_stop_summary, fit
from mlpkit.train.evaluate import evaluate


@dataclass(frozen=True)
class DataSource:
    """How commands find datasets: --data-dir, --offline, and a download progress hook."""

    data_dir: str | None = None
    offline: bool = False
    progress: Progress | None = None

    def load(self, cfg: Config, *, stored: bool = False, record: dict | None = None) -> Dataset:
        """The dataset a config names; --data-dir wins over the config's data.data_dir.

        ``stored``: the config came from a run folder or weights file, not from the user;
        ``record`` is where that run's data was read from (``runs.data_record``). Then
        --data-dir wins, then $MLPKIT_DATA_DIR; else the recorded folder or file is read
        as it is: nothing is ever downloaded or created at a path a file names, and a
        recorded path that is gone is an error naming it.
        """
        name = cfg.data.dataset
        opts = FolderOptions(cfg.data.image_size, cfg.data.prepare, cfg.data.test_fraction, cfg.data.label_column)
        if not stored:
            return load_dataset(name, self.data_dir or cfg.data.data_dir, offline=self.offline,
                                progress=self.progress, options=opts)
        if self.data_dir or os.environ.get(DATA_DIR_ENV):
            return load_dataset(name, self.data_dir, offline=self.offline, progress=self.progress)
        location = (record or {}).get("location")
        if location and name in REGISTRY:
            if not Path(location).is_dir():
                raise DataError(f"{location}: the folder this run's {name} data was read from no longer exists; "
                                "give the data's new place with --data-dir DIR")
            return load_dataset(name, location, offline=True)
        if location and is_path_dataset(name):
            for cand in (location, name):
                if Path(cand).exists():
                    return load_dataset(cand, options=opts)
            raise DataError(f"{location}: the dataset this run was trained on no longer exists")
        kept = cfg.data.data_dir  # older runs recorded only the config's folder: a place to look, read-only
        if kept and Path(kept).is_dir():
            with contextlib.suppress(DataError):
                return load_dataset(name, kept, offline=True)
        return load_dataset(name, None, offline=self.offline, progress=self.progress)


def _source(data: DataSource | str | None) -> DataSource:
    return data if isinstance(data, DataSource) else DataSource(data)


def load_data_for(cfg: Config, data: DataSource | str | None = None, *, stored: bool = False,
                  record: dict | None = None) -> Dataset:
    return _source(data).load(cfg, stored=stored, record=record)


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
              data: DataSource | str | None = None, *, force: bool = False) -> tuple[Trainer, RunWriter]:
    """A new run: the config validated, the run folder proven writable, then the data loaded.

    ``force`` replaces a run already in ``out``; without it such a folder is refused.
    """
    cfg = load_config(config, overrides)
    run_dir = out if out is not None else default_run_dir(config)
    prepare_run_dir(run_dir, force=force)  # an unwritable or occupied folder is reported before any work
    trainer = Trainer(cfg, load_data_for(cfg, data))
    return trainer, RunWriter(run_dir, cfg, force=force, data=data_record(cfg, trainer.data), source=str(config))


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
        trainer.load_state(ck.arrays, ck.state)
    except (TypeError, ValueError, KeyError, OverflowError) as e:
        raise CheckpointError(f"{ck.path}: its trainer state cannot be restored ({type(e).__name__})") from None
    warnings = []
    now = blas_threads()
    if ck.blas_threads is not None and now is not None and ck.blas_threads != now:
        warnings.append(f"the run was checkpointed with {ck.blas_threads} BLAS thread(s) and resumes with {now}: "
                        f"it continues correctly, but not bit-identically to an uninterrupted run (set "
                        f"OPENBLAS_NUM_THREADS={ck.blas_threads} for that)")
    run_dir = ck.path.parent.parent if ck.path.parent.name == CHECKPOINTS else ck.path.parent
    plan = ResumePlan(str(run_dir), str(ck.path), trainer.epoch, trainer.epoch_step, cfg.train.epochs, warnings)
    return trainer, ck, plan


def resume(run: str | Path, data: DataSource | str | None = None, overrides: tuple[str, ...] = ()
           ) -> tuple[Trainer, RunWriter, ResumePlan]:
    """The trainer and run writer of an interrupted run, restored from its last checkpoint."""
    trainer, ck, plan = check_resume(run, data, overrides)
    writer = RunWriter(plan.run, trainer.cfg, resume=True, data=data_record(trainer.cfg, trainer.data))
    writer.write_metrics(trainer.history)  # metrics.jsonl agrees with the checkpoint
    return trainer, writer, plan


def is_run_path(target: str | Path) -> bool:
    """A run folder or weights file, as opposed to a YAML config."""
    p = Path(target)
    return p.is_dir() or p.suffix == ".npz"


def trainer_for(target: str | Path, overrides: tuple[str, ...] = (), data: DataSource | str | None = None) -> Trainer:
    """A trainer from a config, or one holding a saved run's weights."""
    if not is_run_path(target):
        return prepare(target, overrides, data)
    if overrides:
        raise ConfigError(f"{target}: --set applies to configs, not to saved runs")
    saved = load_weights(target)
    trainer = Trainer(saved.cfg, load_data_for(saved.cfg, data, stored=True, record=saved.data))
    trainer.model.load_params(saved.model.named_params())
    trainer.epoch = saved.epoch or 0  # the weights' age, for labels ("trained weights, epoch N")
    return trainer


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


@dataclass(frozen=True)
class Downloaded:
    """A dataset's files, present and verified."""

    dataset: str
    folder: str
    files: list[str]


def download_dataset(name: str, data_dir: str | None = None, progress: Progress | None = None) -> Downloaded:
    """Download a registered IDX dataset (files already present and intact are kept)."""
    info = REGISTRY.get(name)
    if info is None or not info.files:
        known = ", ".join(n for n, i in REGISTRY.items() if i.files)
        raise ConfigError(f"{name[:60]!r} is not a downloadable dataset; expected one of {known}")
    paths = ensure_idx_dataset(info, data_dir, progress=progress)
    return Downloaded(name, str(paths[0].parent), [p.name for p in paths])


# --------------------------------------------------------------------------- predict


@dataclass(frozen=True)
class Guess:
    label: int
    name: str
    probability: float


@dataclass(frozen=True)
class Prediction:
    source: str  # the file, or file[i] for a row of an array
    prepared: bool  # MNIST-style preparation was applied (False: used as given)
    top: list[Guess]


@dataclass(frozen=True)
class Predictions:
    run: str
    image_shape: list[int]
    items: list[Prediction]


def _input_record(saved: Any) -> dict:
    """How the run's model wants its input; reconstructed for weights saved before runs recorded it."""
    if saved.data is not None and "pixel_max" in saved.data:
        return saved.data
    cfg = saved.cfg
    if cfg.data.normalize:
        raise CheckpointError(f"{saved.path}: was saved before mlpkit recorded its input normalization; train it "
                              "again to predict with it")
    pixel_max = 16 if cfg.data.dataset == "digits" else 255
    side = math.isqrt(saved.model.in_features)
    names = list(REGISTRY[cfg.data.dataset].class_names) if cfg.data.dataset in REGISTRY else []
    return {"scale": 1 / pixel_max, "shift": 0.0, "pixel_max": pixel_max, "image_shape": [side, side],
            "class_names": names}


def predict(run: str | Path, inputs: list[str | Path], *, top_k: int = 3, raw: bool = False
            ) -> tuple[Predictions, list[np.ndarray]]:
    """The run's model on the user's own images or arrays: the top-k classes of each, with probabilities.

    Returns the predictions and the (side, side) images in [0, 1] the model saw.
    """
    from mlpkit.data.images import load_inputs, prepare, to_model_input
    from mlpkit.nn.losses import softmax

    saved = load_weights(run)
    rec = _input_record(saved)
    shape = rec.get("image_shape") or []
    if len(shape) != 2 or shape[0] != shape[1] or shape[0] * shape[1] != saved.model.in_features:
        raise ConfigError(f"{saved.path}: its model takes {saved.model.in_features} features, not a square image; "
                          "predict works on image models")
    side = shape[0]
    items, seen, preps = [], [], []
    for label, img, ready in load_inputs(inputs, side):
        if raw and img.shape != (side, side):
            raise DataError(f"{label}: is {img.shape[1]}×{img.shape[0]} pixels; with --raw it must already be the "
                            f"run's {side}×{side}")
        img01 = img / 255.0 if (raw or ready) else prepare(img, side, label)
        items.append(label)
        preps.append(not (raw or ready))
        seen.append(img01.astype(np.float32))
    x = np.stack([to_model_input(s, rec).ravel() for s in seen]).astype(saved.model.dtype)  # (N, D)
    with saved.model.mode(training=False):
        logits = np.concatenate([saved.model.forward(x[i: i + 1000]) for i in range(0, len(x), 1000)])
    probs = softmax(logits.astype(np.float64))
    names = rec.get("class_names") or []
    k = max(1, min(top_k, probs.shape[1]))
    out = []
    for label, prepared, p in zip(items, preps, probs):
        best = np.argsort(-p, kind="stable")[:k]
        out.append(Prediction(label, prepared, [Guess(int(c), names[c] if c < len(names) else str(c), float(p[c]))
                                                 for c in best]))
    return Predictions(str(saved.path), [side, side], out), seen


@dataclass(frozen=True)
class Exported:
    run: str
    format: str
    file: str
    bytes: int
    layers: list[dict]


def export_run(run: str | Path, fmt: str, out: str | Path | None = None) -> Exported:
    """Write a run's model as ONNX or safetensors (``mlpkit.app.export``)."""
    from mlpkit.app import export as ex

    if fmt not in ("onnx", "safetensors"):
        raise ConfigError(f"--format {fmt[:40]!r}: expected onnx or safetensors")
    saved = load_weights(run)
    rec = _input_record(saved)
    target = Path(out) if out is not None else saved.path.with_suffix(".onnx" if fmt == "onnx" else ".safetensors")
    p = ex.export(saved.model, rec, fmt, target)
    return Exported(str(saved.path), fmt, str(p), p.stat().st_size, ex.architecture(saved.model))


@dataclass(frozen=True)
class Preview:
    """Training images of a config before and after its data.augment, for ``mlpkit data preview``."""

    dataset: str
    settings: dict
    originals: list[list[list[float]]]  # (n, H, W) in [0, 1]
    augmented: list[list[list[list[float]]]]  # (versions, n, H, W) in [0, 1]


def preview_augment(config: str | Path, overrides: tuple[str, ...] = (), data: DataSource | str | None = None,
                    n: int = 8, versions: int = 3) -> Preview:
    """The first ``n`` training images of a config and ``versions`` augmented copies of each, drawn as the run's
    first epoch would draw them (the config's seed)."""
    from mlpkit.train.augment import augment
    from mlpkit.train.rngs import Rngs

    cfg = load_config(config, overrides)
    if cfg.data.augment is None:
        raise ConfigError(f"{config}: has no data.augment to preview; add e.g. --set data.augment.affine.rotate=10")
    ds = load_data_for(cfg, data)
    if len(ds.image_shape) != 2:
        raise ConfigError(f"data.augment: transforms images, but {ds.name}'s examples are not images")
    h, w = ds.image_shape
    imgs = ds.x_train[: max(1, n)].reshape(-1, h, w).astype(np.float32)
    settings = {"elastic": dataclasses.asdict(cfg.data.augment.elastic) if cfg.data.augment.elastic else None,
                "affine": dataclasses.asdict(cfg.data.augment.affine) if cfg.data.augment.affine else None}
    rng = Rngs.from_seed(cfg.seed).augment
    top = float(ds.pixel_max)
    outs = [augment(imgs, rng, **settings) / top for _ in range(max(1, versions))]
    return Preview(ds.name, settings, (imgs / top).tolist(), [o.tolist() for o in outs])


def preview_png(p: Preview, out: str | Path, zoom: int = 4) -> Path:
    """The preview as a PNG grid: the originals in the first row, each augmented version below."""
    from PIL import Image

    from mlpkit.atomic import atomic_write

    rows = [np.asarray(p.originals)] + [np.asarray(a) for a in p.augmented]
    n, h, w = rows[0].shape
    gap = 2
    grid = np.full((len(rows) * (h + gap) - gap, n * (w + gap) - gap), 0.35, dtype=np.float32)
    for r, imgs in enumerate(rows):
        for k, img in enumerate(imgs):
            grid[r * (h + gap): r * (h + gap) + h, k * (w + gap): k * (w + gap) + w] = img
    pic = Image.fromarray((np.clip(grid, 0, 1) * 255).astype(np.uint8)).resize(
        (grid.shape[1] * zoom, grid.shape[0] * zoom), Image.NEAREST)
    target = Path(out)
    if target.suffix.lower() != ".png" or not target.parent.is_dir():
        raise ConfigError(f"-o {target}: give a .png file in an existing folder")
    buf = io.BytesIO()
    pic.save(buf, format="PNG")
    atomic_write(target, buf.getvalue())
    return target
