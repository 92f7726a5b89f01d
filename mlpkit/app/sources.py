"""Where commands get their data: --data-dir, --offline and a progress hook, and the policy for a saved run's data
(the recorded place, read as it is; nothing downloaded or created at a path a file names).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from mlpkit.config.schema import Config
from mlpkit.data.cache import ensure_idx_dataset
from mlpkit.data.core import Dataset
from mlpkit.data.download import Progress
from mlpkit.data.folders import FolderOptions
from mlpkit.data.load import load_dataset
from mlpkit.data.registry import DATA_DIR_ENV, REGISTRY, is_path_dataset
from mlpkit.errors import ConfigError, DataError


@dataclass(frozen=True)
class DataSource:
    """How commands find datasets: --data-dir, --offline, and a download progress hook."""

    data_dir: str | None = None
    offline: bool = False
    progress: Progress | None = None

    def load(self, cfg: Config, *, stored: bool = False, record: dict | None = None) -> Dataset:
        """The dataset a config names; --data-dir wins over the config's data.data_dir.

        ``stored``: the config came from a run folder or weights file, not from the user;
        ``record`` is where that run's data was read from (``rundir.data_record``). Then
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


def as_source(data: DataSource | str | None) -> DataSource:
    return data if isinstance(data, DataSource) else DataSource(data)


def load_data_for(cfg: Config, data: DataSource | str | None = None, *, stored: bool = False,
                  record: dict | None = None) -> Dataset:
    return as_source(data).load(cfg, stored=stored, record=record)


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
