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

import contextlib
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from mlpkit.app.configfile import config_to_yaml
from mlpkit.app.locking import RunLock, is_locked
from mlpkit.app.runfiles import (
    _RUN_FILES,
    CHECKPOINTS,
    RUN_FORMAT,
    RUN_INFO,
    RUN_MARKERS,
    checkpoint_bytes,
    read_run_info,
    weights_bytes,
)
from mlpkit.config.schema import Config
from mlpkit.data.registry import preparation_for
from mlpkit.errors import DataError, OutputError
from mlpkit.nn.model import MLP
from mlpkit.reader import read_text
from mlpkit.writer import atomic_write, make_folder, make_subfolder, probe_writable, remove_file

# --------------------------------------------------------------------------- run folder


def default_run_dir(config_path: str | Path, root: str | Path = "runs") -> Path:
    stem = Path(config_path).stem or "run"
    base = Path(root) / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def prepare_run_dir(path: str | Path, *, force: bool = False, resume: bool = False) -> Path:
    """Create the run folder and prove it is writable, before any training.

    A folder that already holds a run is refused unless ``force`` (a new run would mix its
    files with the old one's) or ``resume``. The write probe is a new file of a random name
    created exclusively (``tempfile``), so a symlink planted in the folder is never followed.
    """
    if not str(path).strip():
        raise OutputError("the run folder must not be empty; give --out a folder name")
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise OutputError(f"{path}: exists and is not a folder; choose another --out")
        if not resume and path.is_dir() and any((path / m).exists() for m in RUN_MARKERS):
            if is_locked(path):  # --force would be refused too: say what is going on instead
                raise OutputError(f"{path}: another mlpkit process is training a run in this folder; wait for it "
                                  "to finish or choose another --out")
            if not force and not stopped_before_first_checkpoint(path):
                raise OutputError(f"{path}: already holds a run; choose another --out, resume it with "
                                  f"--resume {path}, or replace it with --force")
        if path.is_dir():  # --force removes nothing before the whole folder is checked
            _check_checkpoints_folder(path) if resume else _check_run_files(path)
        make_folder(path)
        probe_writable(path)
    except OutputError:
        raise
    except OSError as e:
        raise OutputError(f"{path}: the output folder cannot be written ({e.strerror or e}); choose another --out") from None
    return path


def _check_checkpoints_folder(path: Path) -> None:
    """A run folder's checkpoints are written only inside it: its ``checkpoints`` must be a real folder or absent."""
    ck = path / CHECKPOINTS
    if ck.is_symlink():
        raise OutputError(f"{ck}: is a symbolic link; a run folder's checkpoints are written only inside it")
    if ck.exists() and not ck.is_dir():
        raise OutputError(f"{ck}: is not a folder; a run folder's checkpoints are written only inside it")


def stopped_before_first_checkpoint(path: Path) -> bool:
    """An mlpkit run (its run.json says so) that holds no weights: neither final weights nor a checkpoint. It has
    nothing to lose, so a new run may take its folder without --force. A folder that merely holds a file named
    config.yaml is not such a run."""
    weights = ("model.npz", f"{CHECKPOINTS}/last.npz", f"{CHECKPOINTS}/best.npz")
    return read_run_info(path).get("format") == RUN_FORMAT and not any((path / n).exists() for n in weights)


def _old_run_files(path: Path) -> list[Path]:
    return [*(path / n for n in _RUN_FILES), path / CHECKPOINTS / "last.npz", path / CHECKPOINTS / "best.npz"]


def _check_run_files(path: Path) -> None:
    """Before anything is removed: the checkpoints folder is a real folder, and each file an earlier run wrote is
    a file or a link (which is removed itself), never a folder, a FIFO or a device planted under its name."""
    _check_checkpoints_folder(path)
    for p in _old_run_files(path):
        if os.path.lexists(p) and not (p.is_symlink() or p.is_file()):
            raise OutputError(f"{p}: is not a file mlpkit wrote; remove it yourself or choose another --out")


def _remove_run_files(path: Path) -> None:
    """The files an earlier run wrote (only mlpkit's own names; a link is removed, never followed). The whole
    folder is checked first, under the lock: nothing is removed unless everything can be."""
    _check_run_files(path)
    for p in _old_run_files(path):
        try:
            remove_file(p)
        except OSError as e:
            raise OutputError(f"{p}: cannot be removed ({e.strerror or e})") from None


def remove_stale_temp_files(path: Path) -> list[Path]:
    """Temporary files a killed writer left behind (``.<name>.*.tmp``), removed; returns them."""
    removed = []
    for folder in (path, path / CHECKPOINTS):
        if not folder.is_dir() or folder.is_symlink():
            continue
        for p in folder.glob(".*.tmp"):
            if p.name.startswith(tuple(f".{n}." for n in (*_RUN_FILES, "last.npz", "best.npz"))):
                with contextlib.suppress(OSError):
                    if remove_file(p):  # a link itself, never its target
                        removed.append(p)
    return removed


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    return obj


KERAS_COLUMNS = ("epoch", "accuracy", "learning_rate", "loss", "val_accuracy", "val_loss")


def keras_csv(history: list[Any]) -> str:
    """The metrics as Keras's ``CSVLogger`` writes them: a header of ``epoch`` and the sorted metric names, one
    row per epoch numbered from 0; loss as trained, accuracy in inference mode on the training sample, an
    empty cell for what was not measured (no validation split). Readable by pandas, spreadsheets, and any
    tool that reads Keras logs."""
    import csv
    import io

    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(KERAS_COLUMNS)
    for m in history:
        row = _jsonable(m)
        values = (row["epoch"] - 1, row.get("train_eval_acc"), row.get("lr"), row.get("train_loss"),
                  row.get("val_acc"), row.get("val_loss"))
        out.writerow(["" if v is None else repr(float(v)) if not isinstance(v, int) else v for v in values])
    return buf.getvalue()


def jsonl(rows: list[Any]) -> str:
    return "".join(json.dumps(_jsonable(r), sort_keys=False) + "\n" for r in rows)


class RunWriter:
    """Writes a run's files as training proceeds: config, metrics, checkpoints, final weights.

    Args:
        path: the run folder (created; proven writable before any training).
        cfg: the run's config.
        resume: continue an existing run folder (keeps its timings).
    """

    def __init__(self, path: str | Path, cfg: Config, *, resume: bool = False, force: bool = False,
                 data: dict | None = None, source: str | None = None, init_from: str | None = None) -> None:
        self.path = prepare_run_dir(path, force=force, resume=resume)
        self.lock = RunLock(self.path)
        try:
            remove_stale_temp_files(self.path)  # a killed writer's debris, whatever comes next
            if not resume and (force or stopped_before_first_checkpoint(self.path)):
                _remove_run_files(self.path)  # under the lock: never another process's live run
            self.cfg = cfg
            self.data = data  # where the data came from (data_record), stored with every weights file
            self.times: list[float] = _read_times(self.path / "timings.jsonl") if resume else []
            ck = self.path / CHECKPOINTS
            try:
                make_subfolder(ck)
            except OSError as e:
                raise OutputError(f"{ck}: cannot be created ({e.strerror or e})") from None
            self._write("config.yaml", config_to_yaml(cfg))
            info = read_run_info(self.path) if resume else {}
            self.info = {"format": RUN_FORMAT, "started": info.get("started") or _now(),
                         "config": info.get("config", source), "data": data, "status": "running",
                         "pid": os.getpid(), "updated": _now()}
            if init_from or info.get("init_from"):
                self.info["init_from"] = init_from or info.get("init_from")  # the weights it started from
            self._write(RUN_INFO, json.dumps(self.info, indent=2) + "\n")
        except BaseException:
            self.lock.close()
            raise

    def set_status(self, status: str, **extra: Any) -> None:
        """Record how the run stands: running, finished, interrupted, diverged."""
        self.info.update(status=status, updated=_now(), **extra)
        self._write(RUN_INFO, json.dumps(self.info, indent=2) + "\n")

    def close(self) -> None:
        """Release the run folder's lock (also released when the process ends)."""
        self.lock.close()

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
        data = checkpoint_bytes(trainer, self.data)
        self._write(f"{CHECKPOINTS}/last.npz", data)
        return data

    def epoch_done(self, trainer: Any, epoch_time: float) -> None:
        """After an epoch: checkpoint (last, and best when the validation accuracy improved), then metrics."""
        m = trainer.history[-1]
        data = self.checkpoint(trainer)
        if trainer.improved:
            self._write(f"{CHECKPOINTS}/best.npz", data)
        self.write_metrics(trainer.history)
        self.times = self.times[: m.epoch - 1] + [epoch_time]
        self._write("timings.jsonl", jsonl([{"epoch": i + 1, "time_s": t} for i, t in enumerate(self.times)]))

    def write_metrics(self, history: list[Any]) -> None:
        self._write("metrics.jsonl", jsonl(history))
        self._write("metrics.csv", keras_csv(history))
        if self.cfg.train.tensorboard:
            from mlpkit.app.tbevents import EVENTS_NAME, events_bytes

            self._write(EVENTS_NAME, events_bytes(history))

    def finish(self, model: MLP, results: Any) -> None:
        self._write("model.npz", weights_bytes(model, self.cfg, data=self.data))
        self._write("results.json", json.dumps(_jsonable(results), indent=2) + "\n")
        self.set_status("finished")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def data_record(cfg: Config, ds: Any) -> dict:
    """Where a run's data came from, stored with its weights: the run folder alone is enough to score it
    again or resume it. ``location`` is the absolute folder of IDX files or the .npz file (None: embedded)."""
    pixel_max = ds.pixel_max
    return {"dataset": cfg.data.dataset, "location": ds.location, "scale": ds.scale, "shift": ds.shift,
            "image_shape": list(ds.image_shape), "pixel_max": pixel_max, "class_names": list(ds.class_names),
            "preparation": preparation_for(cfg.data.dataset, cfg.data.prepare)}


def _read_times(path: Path) -> list[float]:
    try:
        text = read_text(path, 64 << 20, follow_links=False)
        return [float(json.loads(line)["time_s"]) for line in text.splitlines() if line.strip()]
    except (OSError, DataError, ValueError, KeyError, TypeError):
        return []
