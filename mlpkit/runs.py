"""Run folders and weight files: everything mlpkit writes to disk.

A run folder holds:

- ``config.yaml``    the resolved config (every default filled in);
- ``metrics.jsonl``  one JSON object per epoch, every reported metric;
- ``timings.jsonl``  wall time per epoch (kept apart so that two runs of one
                     seed have byte-identical metrics);
- ``model.npz``      the final weights, with the config stored inside;
- ``results.json``   the final test scores.

Every file is written to a temporary name in the same folder, flushed to disk
and renamed into place, so a crash leaves the old file or the new one, whole.
Weight files are plain ``.npz`` read with ``allow_pickle=False``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write
from .config import Config, config_from_dict, config_to_yaml
from .errors import CheckpointError, MlpkitError
from .build import build_model
from .model import MLP

CONFIG_KEY = "__config__"
META_KEY = "__meta__"
FORMAT = "mlpkit-weights-v1"


class OutputError(MlpkitError):
    """The output folder cannot be created or written."""


# --------------------------------------------------------------------------- atomic files


_EPOCH_1980 = (1980, 1, 1, 0, 0, 0)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz (a zip of .npy files) that depends only on the arrays: fixed timestamps,
    so the same weights give the same bytes. Readable by ``np.load``; never pickles."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, val in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_EPOCH_1980)
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(val), allow_pickle=False)
    return buf.getvalue()


# --------------------------------------------------------------------------- run folder


def default_run_dir(config_path: str | Path, root: str | Path = "runs") -> Path:
    stem = Path(config_path).stem or "run"
    base = Path(root) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def prepare_run_dir(path: str | Path) -> Path:
    """Create the run folder and prove it is writable, before any training."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise OutputError(f"{path}: exists and is not a folder; choose another --out")
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OutputError:
        raise
    except OSError as e:
        raise OutputError(f"{path}: the output folder cannot be written ({e.strerror or e}); choose another --out") from None
    return path


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    return obj


def jsonl(rows: list[Any]) -> str:
    return "".join(json.dumps(_jsonable(r), sort_keys=False) + "\n" for r in rows)


CHECKPOINTS = "checkpoints"


class RunWriter:
    """Writes a run's files as training proceeds: config, metrics, checkpoints, final weights.

    Args:
        path: the run folder (created; proven writable before any training).
        cfg: the run's config.
        resume: continue an existing run folder (keeps its timings).
    """

    def __init__(self, path: str | Path, cfg: Config, *, resume: bool = False) -> None:
        self.path = prepare_run_dir(path)
        self.cfg = cfg
        self.times: list[float] = _read_times(self.path / "timings.jsonl") if resume else []
        self.best_val_acc: float | None = None
        try:
            (self.path / CHECKPOINTS).mkdir(exist_ok=True)
        except OSError as e:
            raise OutputError(f"{self.path / CHECKPOINTS}: cannot be created ({e.strerror or e})") from None
        self._write("config.yaml", config_to_yaml(cfg))

    def _write(self, name: str, data: bytes | str) -> None:
        try:
            atomic_write(self.path / name, data)
        except OSError as e:
            raise OutputError(f"{self.path / name}: cannot be written ({e.strerror or e})") from None

    @property
    def last_checkpoint(self) -> Path:
        return self.path / CHECKPOINTS / "last.npz"

    def checkpoint(self, trainer: Any) -> bytes:
        """Write checkpoints/last.npz: weights, optimizer, position, metrics, random states."""
        data = checkpoint_bytes(trainer, self.best_val_acc)
        self._write(f"{CHECKPOINTS}/last.npz", data)
        return data

    def epoch_done(self, trainer: Any, epoch_time: float) -> None:
        """After an epoch: checkpoint (last, and best by validation accuracy), then metrics."""
        m = trainer.history[-1]
        improved = m.val_acc is not None and (self.best_val_acc is None or m.val_acc > self.best_val_acc)
        if improved:
            self.best_val_acc = m.val_acc
        data = self.checkpoint(trainer)
        if improved:
            self._write(f"{CHECKPOINTS}/best.npz", data)
        self.write_metrics(trainer.history)
        self.times = self.times[: m.epoch - 1] + [epoch_time]
        self._write("timings.jsonl", jsonl([{"epoch": i + 1, "time_s": t} for i, t in enumerate(self.times)]))

    def write_metrics(self, history: list[Any]) -> None:
        self._write("metrics.jsonl", jsonl(history))

    def finish(self, model: MLP, results: Any) -> None:
        self._write("model.npz", weights_bytes(model, self.cfg))
        self._write("results.json", json.dumps(_jsonable(results), indent=2) + "\n")


def _read_times(path: Path) -> list[float]:
    try:
        return [float(json.loads(line)["time_s"]) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError, KeyError, TypeError):
        return []


# --------------------------------------------------------------------------- weights


def weights_bytes(model: MLP, cfg: Config, extra: dict[str, np.ndarray] | None = None) -> bytes:
    """An .npz of the named parameters, with the config as JSON inside."""
    arrays = dict(model.named_params())
    arrays[CONFIG_KEY] = np.array(json.dumps(cfg.to_dict()))
    arrays[META_KEY] = np.array(json.dumps({"format": FORMAT, "in_features": model.in_features}))
    if extra:
        arrays.update(extra)
    return npz_bytes(arrays)


def resolve_weights_path(run: str | Path) -> Path:
    """A run folder (its model.npz, or its last checkpoint if unfinished) or a weights file."""
    p = Path(run)
    if p.is_dir():
        for cand in (p / "model.npz", p / CHECKPOINTS / "last.npz"):
            if cand.is_file():
                return cand
        raise CheckpointError(f"{p}: has no model.npz or {CHECKPOINTS}/last.npz; is it an mlpkit run folder?")
    if not p.exists():
        raise CheckpointError(f"{p}: no such run folder or weights file")
    return p


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz, without pickle; a bad file is one clear error."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f"{path}: is not a readable mlpkit weights file ({msg})") from None


def load_weights(run: str | Path, *, dtype: str | None = None) -> tuple[Config, MLP, Path]:
    """Rebuild the model of a run folder or weights file, without the YAML.

    Raises:
        CheckpointError: naming the file and what is missing or inconsistent.
    """
    path = resolve_weights_path(run)
    arrays = read_npz(path)
    if CONFIG_KEY not in arrays or META_KEY not in arrays:
        raise CheckpointError(f"{path}: is not an mlpkit weights file (no stored config)")
    try:
        meta = json.loads(str(arrays[META_KEY]))
        cfg_dict = json.loads(str(arrays[CONFIG_KEY]))
        in_features = int(meta["in_features"])
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: its stored config cannot be read ({e})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: has format {meta.get('format')!r}, expected {FORMAT}")
    cfg = config_from_dict(cfg_dict, f"{path} (stored config)")
    if not 0 < in_features <= 10_000_000:
        raise CheckpointError(f"{path}: stored input width {in_features} is not valid")
    model = build_model(cfg.model, in_features, np.random.default_rng(0), dtype=dtype)
    for name, own in model.named_params().items():
        if name not in arrays:
            raise CheckpointError(f"{path}: is missing the array {name}")
        arr = arrays[name]
        if arr.shape != own.shape:
            raise CheckpointError(f"{path}: array {name} has shape {arr.shape} but its config needs {own.shape}")
        if not np.issubdtype(arr.dtype, np.floating):
            raise CheckpointError(f"{path}: array {name} has dtype {arr.dtype}, expected floats")
        own[...] = arr
    return cfg, model, path


# --------------------------------------------------------------------------- checkpoints


def checkpoint_bytes(trainer: Any, best_val_acc: float | None = None) -> bytes:
    """A weights file plus the optimizer state and the trainer's position and random states."""
    arrays, state = trainer.state()
    meta = {"format": FORMAT, "kind": "checkpoint", "in_features": trainer.model.in_features,
            "trainer": state, "best_val_acc": best_val_acc}
    arrays[CONFIG_KEY] = np.array(json.dumps(trainer.cfg.to_dict()))
    arrays[META_KEY] = np.array(json.dumps(meta))
    return npz_bytes(arrays)


_TRAINER_KEYS = {"epoch": int, "step": int, "shuffle_rng": dict, "dropout_rng": dict, "loss_sum": float,
                 "norm_sums": dict, "history": list}


def resolve_checkpoint_path(run: str | Path) -> Path:
    """A run folder (its checkpoints/last.npz) or a checkpoint file."""
    p = Path(run)
    if p.is_dir():
        cand = p / CHECKPOINTS / "last.npz"
        if not cand.is_file():
            raise CheckpointError(f"{p}: has no {CHECKPOINTS}/last.npz to resume from; is it an mlpkit run folder?")
        return cand
    if not p.exists():
        raise CheckpointError(f"{p}: no such run folder or checkpoint file")
    return p


def read_checkpoint(run: str | Path) -> tuple[Config, dict[str, np.ndarray], dict, Path]:
    """The config, arrays and trainer state of a checkpoint, checked for form (not yet for shapes)."""
    path = resolve_checkpoint_path(run)
    arrays = read_npz(path)
    if CONFIG_KEY not in arrays or META_KEY not in arrays:
        raise CheckpointError(f"{path}: is not an mlpkit checkpoint (no stored config)")
    try:
        meta = json.loads(str(arrays.pop(META_KEY)))
        cfg_dict = json.loads(str(arrays.pop(CONFIG_KEY)))
    except ValueError as e:
        raise CheckpointError(f"{path}: its stored config cannot be read ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: is not an mlpkit checkpoint of format {FORMAT}")
    if meta.get("kind") != "checkpoint":
        raise CheckpointError(f"{path}: holds final weights only, not a checkpoint to resume from")
    state = meta.get("trainer")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: has no trainer state")
    for key, typ in _TRAINER_KEYS.items():
        v = state.get(key)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) if typ is float else isinstance(v, typ)
        if not ok or (typ is int and isinstance(v, bool)):
            raise CheckpointError(f"{path}: trainer state {key!r} is missing or malformed")
    cfg = config_from_dict(cfg_dict, f"{path} (stored config)")
    state["best_val_acc"] = meta.get("best_val_acc")
    return cfg, arrays, state, path


def check_checkpoint_fits(path: Path, trainer: Any, arrays: dict[str, np.ndarray], state: dict) -> None:
    """Every array the trainer needs is there with its shape; the position is inside the run."""
    own = trainer.model.named_params()
    for name, p in own.items():
        if name not in arrays:
            raise CheckpointError(f"{path}: is missing the array {name}")
        a = arrays[name]
        if a.shape != p.shape or not np.issubdtype(a.dtype, np.floating):
            raise CheckpointError(f"{path}: array {name} is {a.dtype} {a.shape} but its config needs {p.dtype} {p.shape}")
    for name, a in arrays.items():
        if name.startswith("optim."):
            base = name[len("optim."):]
            if base not in own or a.shape != own[base].shape:
                raise CheckpointError(f"{path}: optimizer array {name} does not match the model")
        elif name not in own:
            raise CheckpointError(f"{path}: holds an unexpected array {name}")
    if not 0 <= state["step"] < trainer.steps_per_epoch or not 0 <= state["epoch"] <= 10_000_000:
        raise CheckpointError(f"{path}: position epoch {state['epoch']}, step {state['step']} is not valid")
    if len(state["history"]) != state["epoch"]:
        raise CheckpointError(f"{path}: holds {len(state['history'])} epochs of metrics for epoch {state['epoch']}")
    try:
        probe = np.random.default_rng()
        probe.bit_generator.state = state["shuffle_rng"]
        probe.bit_generator.state = state["dropout_rng"]
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"{path}: a stored random-generator state is malformed ({e})") from None
