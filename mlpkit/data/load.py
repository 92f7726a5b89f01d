"""Datasets: the embedded digits, MNIST-format IDX files, and .npz files.

Images are held as uint8 (N, D) rows and scaled to floats one batch at a time
(``Dataset.scale`` maps the stored integers to [0, 1]), so MNIST costs about
55 MB rather than the 376 MB of float64.
"""

from __future__ import annotations

import gzip
import io
from importlib import resources
from pathlib import Path

import numpy as np

from mlpkit.data.cache import cache_root, load_idx_dataset
from mlpkit.data.core import Dataset
from mlpkit.data.download import Progress
from mlpkit.data.folders import FolderOptions
from mlpkit.data.npz import load_npz
from mlpkit.data.registry import DIGITS_SPLIT_SEED, DIGITS_TEST, REGISTRY, is_path_dataset
from mlpkit.errors import DataError
from mlpkit.reader import read_bytes

# --------------------------------------------------------------------------- digits


def load_digits() -> Dataset:
    """The embedded UCI digits, split 1,437/360 with a fixed seed."""
    ref = resources.files("mlpkit.datasets").joinpath("digits.csv.gz")
    with resources.as_file(ref) as path:
        text = gzip.decompress(read_bytes(path, 1 << 20)).decode("ascii")  # 57 KB compressed
    table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.uint8)  # (1797, 65)
    x, y = table[:, :64], table[:, 64].astype(np.int64)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(y))
    test, train = order[:DIGITS_TEST], order[DIGITS_TEST:]
    info = REGISTRY["digits"]
    return Dataset(
        "digits",
        np.ascontiguousarray(x[train]),
        y[train],
        np.ascontiguousarray(x[test]),
        y[test],
        1.0 / 16.0,
        10,
        info.class_names,
        info.image_shape,
        "embedded (mlpkit/datasets/digits.csv.gz)",
        pixel_max=16.0,
    )


def load_own(path: str | Path, options: FolderOptions | None = None) -> Dataset:
    """A folder of images (ImageFolder layout) or a CSV of pixel rows, as a Dataset (``mlpkit.data.folders``)."""
    from mlpkit.data.folders import FolderOptions, load_csv, load_image_folder

    p = Path(path)
    opts = options or FolderOptions()
    if p.is_dir():
        arrays, names = load_image_folder(p, opts, cache_root() / "prepared")
    elif p.suffix.lower() == ".csv" and p.is_file():
        arrays, names = load_csv(p, opts)
    else:
        raise DataError(f"{p}: no such dataset folder or CSV file")
    x_tr, x_te = arrays["x_train"], arrays["x_test"]
    if len(x_te) == 0 or len(x_tr) == 0:
        raise DataError(f"{p}: has too few images to hold out a test split (data.test_fraction)")
    y_tr = arrays["y_train"]
    present = np.bincount(y_tr, minlength=len(names)) > 0
    if not present.all():
        raise DataError(f"{p}: class {names[int(np.argmin(present))]!r} has no training example")
    shape = tuple(int(v) for v in x_tr.shape[1:])
    d = int(np.prod(shape))
    return Dataset(p.name or str(p), np.ascontiguousarray(x_tr.reshape(len(x_tr), d)), y_tr.astype(np.int64),
                   np.ascontiguousarray(x_te.reshape(len(x_te), d)), arrays["y_test"].astype(np.int64), 1.0 / 255.0,
                   len(names), tuple(names), shape, str(p), location=str(p.resolve()))


def _nonempty(ds: Dataset) -> Dataset:
    """Every reader's result checked the same way: a split without examples is refused by name, before any
    statistic or model is computed from it (a kmnist folder of empty files gave a traceback in data info)."""
    where = ds.location or ds.name
    for split, y in (("training", ds.y_train), ("test", ds.y_test)):
        if len(y) == 0:
            raise DataError(f"{where}: its {split} split holds no examples")
    return ds


def load_dataset(
    name: str, data_dir: str | Path | None = None, *, offline: bool = False, progress: Progress | None = None,
    options: FolderOptions | None = None,
) -> Dataset:
    """Load a dataset by registry name (downloading it unless ``offline``), or a path: an .npz, a CSV of
    pixel rows or an ImageFolder (``options``: image size, preparation, test split).

    Raises:
        DataError: naming the dataset or file and what is wrong or where it looked.
    """
    if name == "digits":
        return load_digits()
    if name in REGISTRY:
        return _nonempty(load_idx_dataset(name, data_dir, offline=offline, progress=progress))
    if name.endswith(".npz"):
        return _nonempty(load_npz(name))
    if is_path_dataset(name):
        return _nonempty(load_own(name, options))
    raise DataError(f"unknown dataset {name!r}; expected one of {', '.join(REGISTRY)}, or a path to an .npz file, a "
                    f"CSV file or an image folder")
