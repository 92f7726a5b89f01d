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
import os
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config, config_from_dict, config_to_yaml
from .errors import CheckpointError, MlpkitError
from .model import MLP, build_model

CONFIG_KEY = "__config__"
META_KEY = "__meta__"
FORMAT = "mlpkit-weights-v1"


class OutputError(MlpkitError):
    """The output folder cannot be created or written."""


# --------------------------------------------------------------------------- atomic files


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, whole."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
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


class RunWriter:
    """Writes a run's files as training proceeds."""

    def __init__(self, path: str | Path, cfg: Config) -> None:
        self.path = prepare_run_dir(path)
        self.cfg = cfg
        self.times: list[float] = []
        try:
            atomic_write(self.path / "config.yaml", config_to_yaml(cfg))
        except OSError as e:
            raise OutputError(f"{self.path}: cannot write config.yaml ({e.strerror or e})") from None

    def _write(self, name: str, data: bytes | str) -> None:
        try:
            atomic_write(self.path / name, data)
        except OSError as e:
            raise OutputError(f"{self.path / name}: cannot be written ({e.strerror or e})") from None

    def epoch_done(self, history: list[Any], epoch_time: float) -> None:
        self.times.append(epoch_time)
        self._write("metrics.jsonl", jsonl(history))
        self._write("timings.jsonl", jsonl([{"epoch": i + 1, "time_s": t} for i, t in enumerate(self.times)]))

    def finish(self, model: MLP, results: Any) -> None:
        self._write("model.npz", weights_bytes(model, self.cfg))
        self._write("results.json", json.dumps(_jsonable(results), indent=2) + "\n")


# --------------------------------------------------------------------------- weights


def weights_bytes(model: MLP, cfg: Config, extra: dict[str, np.ndarray] | None = None) -> bytes:
    """An .npz of the named parameters, with the config as JSON inside."""
    arrays = dict(model.named_params())
    arrays[CONFIG_KEY] = np.array(json.dumps(cfg.to_dict()))
    arrays[META_KEY] = np.array(json.dumps({"format": FORMAT, "in_features": model.in_features}))
    if extra:
        arrays.update(extra)
    return npz_bytes(arrays)


def save_weights(path: str | Path, model: MLP, cfg: Config) -> None:
    atomic_write(path, weights_bytes(model, cfg))


def resolve_weights_path(run: str | Path) -> Path:
    """A run folder (its model.npz) or a weights file."""
    p = Path(run)
    if p.is_dir():
        cand = p / "model.npz"
        if not cand.is_file():
            raise CheckpointError(f"{p}: has no model.npz; is it a finished mlpkit run folder?")
        return cand
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
