"""The runs on disk: list them, compare them, read their learning curves. Results are plain data.

A run folder is one that ``mlpkit train`` wrote: ``config.yaml`` plus ``run.json``
(runs from before it was written are recognized by their checkpoints or weights).
Everything here only reads, and a damaged file makes a field unknown (None),
never the listing fail.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpkit.app.configfile import parse_yaml
from mlpkit.app.locking import is_locked
from mlpkit.app.runfiles import CHECKPOINTS, RUN_INFO, read_run_info, small_text
from mlpkit.errors import CheckpointError, ConfigError

MAX_DEPTH = 3  # runs/<name>, runs/<group>/<name>, ...


class RunFileWarning(UserWarning):
    """A run file was damaged; what could not be read is treated as unknown (the CLI shows it as one line)."""


@dataclass(frozen=True)
class RunRow:
    """One run as ``mlpkit runs`` lists it."""

    name: str  # the folder, relative to the listed root
    path: str
    config: str | None  # the config file it was started from
    started: str | None  # ISO 8601 local time
    epochs_done: int
    epochs_planned: int | None
    best_val_acc: float | None
    test_acc: float | None
    status: str  # finished | running | interrupted | diverged | unknown


_NUMBERS = ("train_loss", "train_eval_loss", "train_eval_acc", "val_loss", "val_acc", "lr")
_WEIGHT_NAME = re.compile(r"layers\.\d{1,6}\.[Wb]\Z")


def _number(v: object) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def clean_row(row: dict) -> tuple[dict, int]:
    """A metrics row with every field of the right type: (the row, how many fields were damaged and became
    unknown, None). The one policy of runs, compare and plot for a row a user or a crash has damaged."""
    damaged = 0
    epoch = row.get("epoch")
    ok_epoch = isinstance(epoch, int) and not isinstance(epoch, bool) and 1 <= epoch <= 10_000_000
    out: dict = {"epoch": epoch if ok_epoch else None}
    damaged += not ok_epoch
    for key in _NUMBERS:
        out[key] = _number(row.get(key))
        damaged += key in row and row[key] is not None and out[key] is None
    norms = row.get("grad_norms")
    good = {k: _number(v) for k, v in norms.items() if isinstance(k, str) and _WEIGHT_NAME.match(k)} \
        if isinstance(norms, dict) else {}
    out["grad_norms"] = {k: v for k, v in good.items() if v is not None}
    damaged += (norms is not None and not isinstance(norms, dict)) + (
        len(norms) - len(out["grad_norms"]) if isinstance(norms, dict) else 0)
    return out, damaged


def read_metrics(run: Path, damaged: list[str] | None = None) -> list[dict]:
    """The run's metrics.jsonl rows, cleaned (``clean_row``); lines that are not JSON objects are skipped. With
    ``damaged``, a sentence saying what was unreadable is appended to it."""
    text = small_text(run / "metrics.jsonl") or ""
    rows, bad_lines, bad_fields = [], 0, 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            row = None
        if not isinstance(row, dict):
            bad_lines += 1
            continue
        clean, n = clean_row(row)
        bad_fields += n
        rows.append(clean)
    if damaged is not None and (bad_lines or bad_fields):
        damaged.append(f"{run / 'metrics.jsonl'}: {bad_lines} unreadable line(s) skipped and {bad_fields} damaged "
                       "value(s) read as unknown")
    return rows


def read_results(run: Path) -> dict:
    text = small_text(run / "results.json")
    with contextlib.suppress(TypeError, ValueError, RecursionError):
        data = json.loads(text)  # type: ignore[arg-type]
        return data if isinstance(data, dict) else {}
    return {}


def read_config(run: Path) -> dict:
    """The run's resolved config as plain data ({} if unreadable)."""
    text = small_text(run / "config.yaml")
    if text is None:
        return {}
    with contextlib.suppress(ConfigError):
        data = parse_yaml(text, str(run / "config.yaml"))
        return data if isinstance(data, dict) else {}
    return {}


def is_run(p: Path) -> bool:
    return (p / "config.yaml").is_file() and any((p / n).exists() for n in (RUN_INFO, "model.npz", CHECKPOINTS))


def run_status(run: Path, info: dict | None = None) -> str:
    info = read_run_info(run) if info is None else info
    if is_locked(run):
        return "running"
    status = info.get("status")
    if status == "running":  # recorded as running, but nobody holds the lock: killed
        return "interrupted"
    if status in ("finished", "interrupted", "diverged"):
        return status
    if (run / "model.npz").is_file():
        return "finished"
    if (run / CHECKPOINTS / "last.npz").is_file():
        return "interrupted"
    return "unknown"


def describe_run(run: Path, root: Path | None = None) -> RunRow:
    info = read_run_info(run)
    metrics = read_metrics(run)
    cfg = read_config(run)
    planned = cfg.get("train", {}).get("epochs") if isinstance(cfg.get("train"), dict) else None
    vals = [m["val_acc"] for m in metrics if isinstance(m.get("val_acc"), (int, float))]
    test = read_results(run).get("test", {})
    started = info.get("started") if isinstance(info.get("started"), str) else None
    if started is None:
        with contextlib.suppress(OSError):
            started = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime((run / "config.yaml").stat().st_mtime))
    name = str(run.relative_to(root)) if root is not None and run != root else run.name
    return RunRow(
        name, str(run), info.get("config") if isinstance(info.get("config"), str) else None, started,
        len(metrics), planned if isinstance(planned, int) and not isinstance(planned, bool) else None,
        max(vals) if vals else None,
        test.get("accuracy") if isinstance(test, dict) and isinstance(test.get("accuracy"), (int, float)) else None,
        run_status(run, info),
    )


def list_runs(root: str | Path = "runs", *, missing_ok: bool = False) -> list[RunRow]:
    """Every run under ``root`` (or ``root`` itself if it is one), newest first.

    ``missing_ok``: a missing ``root`` has no runs (the default runs/ before the first one).
    """
    root = Path(root)
    if not root.exists():
        if missing_ok:
            return []
        raise ConfigError(f"{root}: no such folder; runs go to runs/ unless --out says otherwise")
    if not root.is_dir():
        raise ConfigError(f"{root}: is not a folder")
    found: list[Path] = []

    def walk(p: Path, depth: int) -> None:
        if is_run(p):
            found.append(p)
            return
        if depth >= MAX_DEPTH:
            return
        with contextlib.suppress(OSError):
            for child in sorted(p.iterdir()):
                if child.is_dir() and not child.is_symlink() and not child.name.startswith("."):
                    walk(child, depth + 1)

    walk(root, 0)
    rows = [describe_run(p, root) for p in found]
    return sorted(rows, key=lambda r: (r.started or "", r.name), reverse=True)


# --------------------------------------------------------------------------- compare


@dataclass(frozen=True)
class Comparison:
    runs: list[str]
    metrics: list[tuple[str, list[Any]]]  # (metric, one value per run)
    differences: list[tuple[str, list[Any]]]  # (config key, one value per run), only keys that differ


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(d, list):
        out = {}
        for i, v in enumerate(d):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out or {prefix: []}
    return {prefix: d}


def compare_runs(paths: list[str | Path]) -> Comparison:
    """Final metrics side by side, and the config keys whose values differ."""
    runs = []
    for p in paths:
        p = Path(p)
        if not p.is_dir() or not is_run(p):
            raise CheckpointError(f"{p}: is not an mlpkit run folder (no config.yaml with checkpoints or weights)")
        runs.append(p)
    rows: dict[str, list[Any]] = {}
    names = ["epochs", "final train loss (as trained)", "final train loss (eval)", "final train acc (eval)",
             "final val loss", "final val acc", "best val acc", "test loss", "test acc", "status"]
    for k in names:
        rows[k] = []
    for p in runs:
        m = read_metrics(p)
        last = m[-1] if m else {}
        test = read_results(p).get("test", {})
        test = test if isinstance(test, dict) else {}
        vals = [r["val_acc"] for r in m if isinstance(r.get("val_acc"), (int, float))]
        for k, v in zip(names, [len(m), last.get("train_loss"), last.get("train_eval_loss"), last.get("train_eval_acc"),
                                last.get("val_loss"), last.get("val_acc"), max(vals) if vals else None,
                                test.get("loss"), test.get("accuracy"), run_status(p)]):
            rows[k].append(v)
    configs = [read_config(p) for p in runs]
    flats = [_flatten(c) for c in configs]
    keys = sorted(set().union(*flats)) if flats else []
    diffs = [(k, [f.get(k) for f in flats]) for k in keys if len({json.dumps(f.get(k)) for f in flats}) > 1]
    if any(k.startswith("model.layers") for k, _ in diffs):  # the architectures whole, not indexed differences
        stacks = [_stack(c.get("model", {}).get("layers") if isinstance(c.get("model"), dict) else None)
                  for c in configs]
        diffs = [("model.layers", stacks)] + [(k, v) for k, v in diffs if not k.startswith("model.layers")]
    return Comparison([str(p) for p in runs], list(rows.items()), diffs)


def _stack(layers: Any) -> str | None:
    """A layer list as one line: 'linear 128 → sigmoid → dropout 0.2 → linear 10' (None when unreadable)."""
    if not isinstance(layers, list):
        return None
    parts = []
    for layer in layers:
        if isinstance(layer, str):
            parts.append(layer)
        elif isinstance(layer, dict) and len(layer) == 1:
            ((kind, opts),) = layer.items()
            if isinstance(opts, dict):
                main = next(iter(opts.values()), None)
                extra = ", ".join(f"{k} {v}" for k, v in list(opts.items())[1:] if v is not None)
                parts.append(f"{kind} {main}" + (f" ({extra})" if extra else ""))
            else:
                parts.append(f"{kind} {opts}")
        else:
            return None
    return " → ".join(parts)


def run_files(runs: list[Path]) -> list[Path]:
    """The files ``learning_curves`` reads, which a figure of them must never replace."""
    return [p / name for p in runs for name in ("metrics.jsonl", "config.yaml", RUN_INFO)]


def learning_curves(paths: list[str | Path]) -> list[tuple[str, list[dict]]]:
    """(run name, metrics rows) of each run, for ``mlpkit plot``."""
    out = []
    for p in paths:
        p = Path(p)
        if not p.is_dir() or not is_run(p):
            raise CheckpointError(f"{p}: is not an mlpkit run folder (no config.yaml with checkpoints or weights)")
        notes: list[str] = []
        rows = [r for r in read_metrics(p, notes) if r["epoch"] is not None]
        for note in notes:
            warnings.warn(note, RunFileWarning, stacklevel=2)
        if not rows:
            why = "is empty" if not (small_text(p / "metrics.jsonl") or "").strip() else "holds no readable epoch row"
            raise CheckpointError(f"{p}: has no finished epoch to plot (metrics.jsonl {why})")
        out.append((p.name, rows))
    return out
