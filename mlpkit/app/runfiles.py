"""A run folder's files and their formats: names, the weights file, the checkpoint, reading and checking them.

Weight files are plain ``.npz`` read by ``mlpkit.data.npz`` (sizes checked before anything is
allocated, never unpickled), with the config and the data's origin stored inside as JSON. A
checkpoint adds the optimizer's velocity, the trainer's position, metrics and random states.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.config.schema import MAX_PARAMS, Config
from mlpkit.config.validate import config_from_dict
from mlpkit.data import npz as npzio
from mlpkit.data.npz import npz_bytes
from mlpkit.data.preparation import PREPARATIONS
from mlpkit.data.registry import REGISTRY, preparation_for
from mlpkit.errors import CheckpointError, DataError, DivergenceError
from mlpkit.nn.model import MLP
from mlpkit.reader import read_text
from mlpkit.training.build import build_model, check_size
from mlpkit.training.checkpoints import trainer_state, validate_state
from mlpkit.training.threads import blas_threads

CONFIG_KEY = "__config__"
META_KEY = "__meta__"
FORMAT = "mlpkit-weights-v1"


CHECKPOINTS = "checkpoints"
_RUN_FILES = ("config.yaml", "metrics.jsonl", "metrics.csv", "events.out.tfevents.mlpkit", "timings.jsonl",
              "model.npz", "results.json", "run.json")
RUN_MARKERS = ("config.yaml", "metrics.jsonl", "model.npz", CHECKPOINTS)


RUN_INFO = "run.json"
RUN_FORMAT = "mlpkit-run-v1"


def small_text(p: Path, limit: int = 64 << 20) -> str | None:
    """A run file's text, or None when it is missing, a link, larger than ``limit`` bytes or not UTF-8."""
    try:
        return read_text(p, limit, follow_links=False)
    except (OSError, DataError):  # DataError: a link, a FIFO, too large, not UTF-8
        return None


def read_run_info(path: Path) -> dict:
    """The run's run.json, or {} when it is missing or unreadable (older runs have none)."""
    text = small_text(path / RUN_INFO, 1 << 20)
    try:
        info = json.loads(text) if text is not None else {}
    except (ValueError, RecursionError):
        return {}
    return info if isinstance(info, dict) else {}


# --------------------------------------------------------------------------- weights


def weights_bytes(model: MLP, cfg: Config, extra: dict[str, np.ndarray] | None = None,
                  data: dict | None = None) -> bytes:
    """An .npz of the named parameters, with the config and the data's origin as JSON inside."""
    arrays = dict(model.named_params())
    arrays[CONFIG_KEY] = np.array(json.dumps(cfg.to_dict()))
    arrays[META_KEY] = np.array(json.dumps({"format": FORMAT, "in_features": model.in_features, "data": data}))
    if extra:
        arrays.update(extra)
    return npz_bytes(arrays)


def resolve_weights_path(run: str | Path) -> Path:
    """A run folder (its model.npz, or its last checkpoint if unfinished), ``RUN/best`` or ``RUN/last`` (its
    checkpoints), or a weights file. A YAML config is refused as such: it has no weights yet."""
    p = Path(run)
    if not p.exists() and p.name in ("best", "last") and (p.parent / CHECKPOINTS).is_dir():
        p = p.parent / CHECKPOINTS / f"{p.name}.npz"
    if p.suffix.lower() in (".yaml", ".yml") and not p.is_dir():
        raise CheckpointError(f"{p}: is a config, not a run; this command takes a run folder or a weights .npz "
                              f"(train the config first: mlpkit train {p})")
    if p.is_dir():
        for cand in (p / "model.npz", p / CHECKPOINTS / "last.npz"):
            if cand.is_file():
                return cand
        raise CheckpointError(_no_checkpoint(p, "model.npz or {CHECKPOINTS}/last.npz"))
    if not p.exists():
        raise CheckpointError(f"{p}: no such run folder or weights file")
    return p


def _no_checkpoint(p: Path, wanted: str) -> str:
    if (p / "config.yaml").is_file():  # a run stopped before its first checkpoint was written
        how = (f"into the same folder (--out {p}: no --force needed, it holds no weights)"
               if read_run_info(p).get("format") == RUN_FORMAT else f"(--out {p} --force replaces this folder)")
        return (f"{p}: the run was stopped before its first checkpoint was written, so there is nothing to resume or "
                f"score; train it again {how}")
    return f"{p}: has no {wanted.format(CHECKPOINTS=CHECKPOINTS)}; is it an mlpkit run folder?"


MAX_WEIGHT_BYTES = 2 * 8 * MAX_PARAMS  # float64 weights and their optimizer state


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of a weights or checkpoint file, sizes checked before reading (``npzio``)."""
    return npzio.read_npz(path, CheckpointError, "an mlpkit weights file", MAX_WEIGHT_BYTES)


def stored_data(path: Path, meta: dict) -> dict | None:
    """The data record of a weights file's metadata (None in files written before it was kept), every
    field checked: it decides how inputs are scaled (``predict``, ``export``) and where data is read."""
    d = meta.get("data")
    if d is None:
        return None

    def number(v: Any, positive: bool = False) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (v > 0 or not positive)

    ok = (isinstance(d, dict) and isinstance(d.get("dataset"), str) and 0 < len(d["dataset"]) <= 4096
          and (d.get("location") is None or (isinstance(d["location"], str) and 0 < len(d["location"]) <= 4096
                                             and "\x00" not in d["location"])))
    if ok and "scale" in d:  # records since image inputs were kept: all of these, or the file is malformed
        shape, names = d.get("image_shape"), d.get("class_names")
        ok = (number(d.get("scale"), positive=True) and number(d.get("shift")) and number(d.get("pixel_max"), True)
              and isinstance(shape, list) and 1 <= len(shape) <= 3
              and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 100_000 for v in shape)
              and isinstance(names, list) and len(names) <= 100_000
              and all(isinstance(v, str) and len(v) <= 256 for v in names)
              and d.get("preparation", "mnist") in PREPARATIONS)
    if not ok:
        raise CheckpointError(f"{path}: its record of where the data came from is malformed")
    return d


def _stored(path: Path, arrays: dict[str, np.ndarray]) -> tuple[dict, Config, int]:
    """The metadata, config and input width stored in a weights file; popped from ``arrays``."""
    if CONFIG_KEY not in arrays or META_KEY not in arrays:
        raise CheckpointError(f"{path}: is not an mlpkit weights file (no stored config)")
    meta = npzio.json_of(arrays, META_KEY, CheckpointError, path)
    cfg_dict = npzio.json_of(arrays, CONFIG_KEY, CheckpointError, path)
    del arrays[META_KEY], arrays[CONFIG_KEY]
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: is not an mlpkit weights file of format {FORMAT}")
    in_features = meta.get("in_features")
    if isinstance(in_features, bool) or not isinstance(in_features, int) or not 0 < in_features <= 10_000_000:
        raise CheckpointError(f"{path}: its stored input width is not valid")
    cfg = config_from_dict(cfg_dict, f"{path} (stored config)")
    check_size(cfg.model, in_features)
    return meta, cfg, in_features


def check_arrays(path: Path, own: dict[str, np.ndarray], arrays: dict[str, np.ndarray], optim_ok: bool) -> None:
    """Every parameter present with its shape, floats, finite; nothing unexpected (optimizer state and
    early stopping's best weights, ``optim.*`` and ``best.*``, if allowed)."""
    for name in own:
        if name not in arrays:
            raise CheckpointError(f"{path}: is missing the array {name}")
    for name, a in arrays.items():
        base = name.removeprefix("optim.").removeprefix("best.")
        if base not in own or (base != name and not optim_ok):
            raise CheckpointError(f"{path}: holds an unexpected array {npzio._short(name, 60)}")
        if a.shape != own[base].shape or a.dtype.kind != "f":
            raise CheckpointError(f"{path}: array {name} is {a.dtype} {a.shape} but its config needs "
                                  f"{own[base].dtype} {own[base].shape}")
        if not np.isfinite(a).all():
            raise CheckpointError(f"{path}: array {name} holds NaN or infinite values")


@dataclasses.dataclass(frozen=True)
class Saved:
    """A model rebuilt from a weights file (a run's model.npz or a checkpoint)."""

    cfg: Config
    model: MLP
    path: Path
    data: dict | None  # where its data came from (``data_record``); None in older files
    epoch: int | None  # epochs trained: from a checkpoint's state or the run's metrics; None if unknown


def load_weights(run: str | Path, *, dtype: str | None = None) -> Saved:
    """Rebuild the model of a run folder or weights file, without the YAML.

    Raises:
        CheckpointError: naming the file and what is missing, inconsistent or not finite.
    """
    path = resolve_weights_path(run)
    arrays = read_npz(path)
    meta, cfg, in_features = _stored(path, arrays)
    model = build_model(cfg.model, in_features, np.random.default_rng(0), dtype=dtype)
    own = model.named_params()
    check_arrays(path, own, arrays, optim_ok=True)
    for name, p in own.items():
        p[...] = arrays[name]
    return Saved(cfg, model, path, stored_data(path, meta), _weights_epoch(path, meta, cfg))


def _weights_epoch(path: Path, meta: dict, cfg: Config) -> int | None:
    """The epochs the weights were trained for, where the file proves it; None (unknown) otherwise. A checkpoint's
    epoch must be a whole number within the run's epochs and agree with its history; a final model.npz's comes
    from its run's metrics.jsonl, one row per epoch, no more than the run's epochs."""
    trainer = meta.get("trainer")
    if isinstance(trainer, dict):
        epoch, history = trainer.get("epoch"), trainer.get("history")
        ok = isinstance(epoch, int) and not isinstance(epoch, bool) and 0 <= epoch <= cfg.train.epochs
        return epoch if ok and isinstance(history, list) and len(history) == epoch else None
    if path.name == "model.npz":
        text = small_text(path.parent / "metrics.jsonl")
        rows = sum(1 for line in (text or "").splitlines() if line.strip())
        return rows if 0 < rows <= cfg.train.epochs else None
    return None


# --------------------------------------------------------------------------- checkpoints


def checkpoint_bytes(trainer: Any, data: dict | None = None) -> bytes:
    """A weights file plus the optimizer state and the trainer's position and random states.

    Raises:
        DivergenceError: a weight or the optimizer state is NaN or infinite; nothing is written, so
            the last checkpoint on disk stays the last good one.
    """
    arrays, state = trainer_state(trainer)
    for name, a in arrays.items():
        if not np.isfinite(a).all():
            where = f"epoch {trainer.epoch + 1}, step {trainer.epoch_step}" if trainer.epoch_step else f"epoch {trainer.epoch}"
            raise DivergenceError(f"{name} became NaN or infinite by {where}; try a {trainer.advice()}")
    meta = {"format": FORMAT, "kind": "checkpoint", "in_features": trainer.model.in_features,
            "trainer": state, "data": data, "blas_threads": blas_threads()}
    arrays[CONFIG_KEY] = np.array(json.dumps(trainer.cfg.to_dict()))
    arrays[META_KEY] = np.array(json.dumps(meta))
    return npz_bytes(arrays)


def resolve_checkpoint_path(run: str | Path) -> Path:
    """A run folder (its checkpoints/last.npz) or a checkpoint file."""
    p = Path(run)
    if p.is_dir():
        cand = p / CHECKPOINTS / "last.npz"
        if not cand.is_file():
            raise CheckpointError(_no_checkpoint(p, "{CHECKPOINTS}/last.npz to resume from"))
        return cand
    if not p.exists():
        raise CheckpointError(f"{p}: no such run folder or checkpoint file")
    return p


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A checkpoint read and checked for form; ``check_checkpoint_fits`` checks it against the trainer."""

    path: Path
    cfg: Config
    arrays: dict[str, np.ndarray]
    state: dict
    data: dict | None
    blas_threads: int | None


def read_checkpoint(run: str | Path) -> Checkpoint:
    """The config, arrays and trainer state of a checkpoint, checked for form (not yet against the model)."""
    path = resolve_checkpoint_path(run)
    arrays = read_npz(path)
    meta, cfg, _ = _stored(path, arrays)
    if meta.get("kind") != "checkpoint":
        raise CheckpointError(f"{path}: holds final weights only, not a checkpoint to resume from")
    state = meta.get("trainer")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: has no trainer state")
    threads = meta.get("blas_threads")
    threads = threads if isinstance(threads, int) and not isinstance(threads, bool) else None
    return Checkpoint(path, cfg, arrays, state, stored_data(path, meta), threads)


def check_checkpoint_fits(ck: Checkpoint, trainer: Any) -> None:
    """Everything the trainer will use, checked before any work: arrays against the model, the
    trainer state against its schema (``training.checkpoints.validate_state``)."""
    check_arrays(ck.path, trainer.model.named_params(), ck.arrays, optim_ok=True)
    validate_state(ck.path, ck.state, ck.cfg, trainer, ck.arrays)


def input_record(saved: Saved) -> dict:
    """How the run's model wants its input; reconstructed for weights saved before runs recorded it."""
    if saved.data is not None and "pixel_max" in saved.data:
        # records before per-dataset preparation: the dataset says which (an old digits run is UCI-made too)
        return {"preparation": preparation_for(saved.cfg.data.dataset, saved.cfg.data.prepare), **saved.data}
    cfg = saved.cfg
    if cfg.data.normalize:
        raise CheckpointError(f"{saved.path}: was saved before mlpkit recorded its input normalization; train it "
                              "again to predict with it")
    pixel_max = 16 if cfg.data.dataset == "digits" else 255
    side = math.isqrt(saved.model.in_features)
    names = list(REGISTRY[cfg.data.dataset].class_names) if cfg.data.dataset in REGISTRY else []
    return {"scale": 1 / pixel_max, "shift": 0.0, "pixel_max": pixel_max, "image_shape": [side, side],
            "class_names": names, "preparation": preparation_for(cfg.data.dataset, cfg.data.prepare)}
