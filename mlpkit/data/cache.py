"""Where datasets live (--data-dir, $MLPKIT_DATA_DIR, the platform cache), finding and verifying their
files, downloading what is missing, and each dataset's status."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs

from mlpkit.data.core import Dataset, DataWarning
from mlpkit.data.download import Progress, Verdict, check_file, fetch
from mlpkit.data.idx import read_idx
from mlpkit.data.registry import DATA_DIR_ENV, REGISTRY, DatasetInfo, RemoteFile
from mlpkit.errors import DataError


def cache_root() -> Path:
    """The platform's cache folder for mlpkit (XDG on Linux: ~/.cache/mlpkit)."""
    return Path(platformdirs.user_cache_dir("mlpkit"))


def data_root(data_dir: str | Path | None) -> tuple[Path, str]:
    """Where datasets live, and why: --data-dir / data.data_dir, then $MLPKIT_DATA_DIR, then the cache."""
    if data_dir:
        return Path(data_dir), "--data-dir / data.data_dir"
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env), f"${DATA_DIR_ENV}"
    return cache_root(), "the cache"


def dataset_dirs(name: str, data_dir: str | Path | None) -> list[Path]:
    """Folders that may hold a dataset's files: the root itself (a folder of just those
    files, like ../shared/data/mnist) and its ``name`` subfolder, where downloads go."""
    root, _ = data_root(data_dir)
    return [root, root / name]


def _find(d: Path, f: RemoteFile) -> Path | None:
    """The file in ``d``: gzip as published, or uncompressed."""
    for cand in (d / f.name, d / f.raw_name):
        if cand.is_file():
            return cand
    return None


def _foreign(info: DatasetInfo) -> dict[str, str]:
    """Checksums of the other datasets' files (the MNIST family shares file names)."""
    out = {}
    for other in REGISTRY.values():
        if other.name != info.name:
            for f in other.files:
                out[f.sha256] = f"{other.name}'s {f.name}"
                if f.raw_sha256:
                    out[f.raw_sha256] = f"{other.name}'s {f.raw_name}"
    return out


def check_files(info: DatasetInfo, paths: list[Path]) -> list[Verdict]:
    foreign = _foreign(info)
    return [check_file(p, f, foreign) for p, f in zip(paths, info.files)]


def locate(info: DatasetInfo, data_dir: str | Path | None) -> tuple[list[Path], list[Verdict] | None] | None:
    """The dataset's files: in the root folder itself if they are usable there (a folder of just
    these files, like ../shared/data/mnist; the MNIST family shares file names, so files there
    may belong to a sibling), else in the ``name`` subfolder (not yet checked: verdicts None)."""
    root, sub = dataset_dirs(info.name, data_dir)
    paths = [_find(root, f) for f in info.files]
    if all(paths):
        verdicts = check_files(info, paths)  # type: ignore[arg-type]
        if all(v.ok for v in verdicts):
            return paths, verdicts  # type: ignore[return-value]
    paths = [_find(sub, f) for f in info.files]
    return (paths, None) if all(paths) else None  # type: ignore[return-value]


def missing_message(info: DatasetInfo, data_dir: str | Path | None, why: str) -> str:
    root, target = dataset_dirs(info.name, data_dir)
    files = ", ".join(f.name for f in info.files)
    near = [f.name for f in info.files if _find(root, f)]
    hint = f" ({root} holds files of these names, but not {info.name}'s: their checksums differ)" if near else ""
    return (f"dataset {info.name}: {why}{hint}; point --data-dir at a folder holding {files}, or put them in "
            f"{target} (from {info.mirrors[0]})")


def verify_files(info: DatasetInfo, paths: list[Path], verdicts: list[Verdict] | None = None) -> None:
    """Check every file against its published checksums: refuse a wrong one, warn about an unverified one."""
    for p, v in zip(paths, verdicts or check_files(info, paths)):
        if not v.ok:
            raise DataError(f"{p}: {v.problem}; the file is corrupt or not the published one; "
                            f"delete it and run: mlpkit data download {info.name}")
        if not v.verified:
            warnings.warn(f"{p}: used unverified ({v.problem})", DataWarning, stacklevel=2)


def ensure_idx_dataset(
    info: DatasetInfo, data_dir: str | Path | None, *, offline: bool = False, progress: Progress | None = None
) -> list[Path]:
    """A dataset's verified files: found, or downloaded unless ``offline``."""
    found = locate(info, data_dir)
    if found is not None:
        paths, verdicts = found
        verify_files(info, paths, verdicts)
        return paths
    if offline:
        raise DataError(missing_message(info, data_dir, "not found and --offline forbids downloading"))
    target = dataset_dirs(info.name, data_dir)[1]
    try:
        for f in info.files:
            if not (target / f.name).is_file() or not check_file(target / f.name, f).verified:
                fetch(f, info.mirrors, target, progress)
    except DataError as e:
        why = str(e).split(": ", 1)[-1] if str(e).startswith("could not download") else str(e)
        raise DataError(missing_message(info, data_dir, f"download failed ({why})")) from None
    return [target / f.name for f in info.files]


def load_idx_dataset(
    name: str, data_dir: str | Path | None, *, offline: bool = False, progress: Progress | None = None
) -> Dataset:
    """Load a registered IDX dataset: found and verified, or downloaded first."""
    info = REGISTRY[name]
    paths = ensure_idx_dataset(info, data_dir, offline=offline, progress=progress)
    return _load_idx_files(info, paths, paths[0].parent)


def _load_idx_files(info: DatasetInfo, paths: list[Path], where: Path) -> Dataset:
    xtr, ytr, xte, yte = (read_idx(p, 3 if i % 2 == 0 else 1) for i, p in enumerate(paths))
    for xs, ys, px, py in ((xtr, ytr, paths[0], paths[1]), (xte, yte, paths[2], paths[3])):
        if xs.shape[0] != ys.shape[0]:
            raise DataError(f"{px}: holds {xs.shape[0]:,} images but {py.name} holds {ys.shape[0]:,} labels")
        if ys.size and int(ys.max()) >= info.num_classes:
            raise DataError(f"{py}: has label {int(ys.max())}, but {info.name} has {info.num_classes} classes")
    if xtr.shape[1:] != xte.shape[1:]:
        raise DataError(f"{paths[2]}: images are {xte.shape[1:]}, but the training images are {xtr.shape[1:]}")
    d = int(np.prod(xtr.shape[1:]))
    return Dataset(
        info.name,
        xtr.reshape(len(xtr), d),
        ytr.astype(np.int64),
        xte.reshape(len(xte), d),
        yte.astype(np.int64),
        1.0 / 255.0,
        info.num_classes,
        info.class_names,
        tuple(xtr.shape[1:]),
        str(where),
        location=str(Path(where).resolve()),
    )


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class DatasetStatus:
    """A registry entry and whether its files are here."""

    name: str
    description: str
    n_train: int
    n_test: int
    num_classes: int
    download_bytes: int
    folder: str  # where it is, or where it would be downloaded to
    status: str  # embedded | present (verified) | unverified: <why> | missing | corrupt: <why>
    source: str


def dataset_status(name: str, data_dir: str | Path | None = None) -> DatasetStatus:
    """Is a registered dataset present and intact (checksums verified)?"""
    info = REGISTRY[name]
    if not info.files:
        where, status = "inside the mlpkit package", "embedded"
    else:
        found = locate(info, data_dir)
        if found is None:
            where, status = str(dataset_dirs(name, data_dir)[1]), "missing"
        else:
            paths, verdicts = found
            where = str(paths[0].parent)
            verdicts = verdicts or check_files(info, paths)
            bad = [f"{p.name} {v.problem}" for p, v in zip(paths, verdicts) if not v.ok]
            unverified = [f"{p.name}: {v.problem}" for p, v in zip(paths, verdicts) if v.ok and not v.verified]
            status = ("corrupt: " + bad[0]) if bad else ("unverified: " + unverified[0]) if unverified else "present"
    return DatasetStatus(name, info.description, info.n_train, info.n_test, info.num_classes, info.download_bytes,
                         where, status, info.source)
