"""The in-memory dataset: uint8 rows, splits, conversion to floats, standardization, statistics.

Images are held as uint8 (N, D) rows and scaled to floats one batch at a time
(``Dataset.scale`` maps the stored integers to [0, 1]), so MNIST costs about
55 MB rather than the 376 MB of float64. numpy only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np

from mlpkit.errors import DataError

Order = Literal["C", "F"]  # memory order: row-major (C) or column-major (Fortran)


class DataWarning(UserWarning):
    """Data that is used but could not be verified, or input that was passed over (the CLI shows it as one
    line)."""


@dataclass(frozen=True)
class Dataset:
    """A train/test split held compactly.

    Attributes:
        x_train: (N, D) uint8 (or float32 for float .npz data); x_test: (M, D).
        y_train: (N,) int64 labels in [0, num_classes); y_test: (M,).
        scale, shift: model input = stored · scale + shift (1/255 and 0 for MNIST,
            unless ``data.normalize`` standardizes the inputs).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    scale: float
    num_classes: int
    class_names: tuple[str, ...]
    image_shape: tuple[int, ...]
    source: str
    shift: float = 0.0  # model input = stored · scale + shift
    location: str | None = None  # the absolute folder (IDX) or file (.npz) it was read from; None if embedded
    pixel_max: float = 255.0  # the largest stored pixel value: 255 for 8-bit images, 16 for the digits, 1 for floats

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def test(self) -> Split:
        return Split(self.x_test, self.y_test)

    def inputs(self, split: Split, n: int | None = None, dtype: np.dtype | type = np.float32, order: Order = "C"
               ) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` examples of ``split`` (all with None) as model inputs (N, D) in ``dtype``, and their labels."""
        k = len(split) if n is None else min(n, len(split))
        return to_float(split.x[:k], self.scale, dtype, order, self.shift), split.y[:k]


@dataclass(frozen=True)
class Split:
    """One set of examples: x (N, D) stored dtype, y (N,) int64."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])


SPLIT_NAMES = ("train", "validation", "test")


def select_split(name: str, train: Split, validation: Split | None, test: Split) -> Split | None:
    """The split called ``name`` (one of SPLIT_NAMES); None for "validation" when none was held out."""
    return {"train": train, "validation": validation, "test": test}[name]


def to_float(x: np.ndarray, scale: float, dtype: np.dtype | type, order: Order = "C", shift: float = 0.0
             ) -> np.ndarray:
    """Stored rows to model inputs, ``x · scale + shift``: (N, D) -> (N, D) ``dtype``.

    ``order="F"`` gives the column-major batch the model's products prefer. The
    transpose happens on the 1-byte values first: 4× less to move, and then the
    conversion reads and writes contiguously (4× faster; docs/performance.md).
    """
    if order == "F":
        x = np.asfortranarray(x)
    dt = np.dtype(dtype)
    if x.dtype.kind in "ui" and x.dtype.itemsize <= 2:
        # Small integers are exact in float32: cast, then scale in place. The same values as one mixed-type
        # multiply, which casts in buffered chunks, and a little faster.
        out = x.astype(dt, order=order)
        out *= dt.type(scale)
    else:
        out = np.empty(x.shape, dtype=dt, order=order)
        np.multiply(x, np.asarray(scale, dtype=dt), out=out, casting="unsafe")
    if shift:
        out += out.dtype.type(shift)
    return out


def uint8_histogram(x: np.ndarray) -> np.ndarray:
    """(256,) int64 counts of each value in a uint8 array, exactly.

    ``np.bincount`` converts its input to int64 first: for MNIST's 47 million pixels a
    376 MB temporary and 0.37 s. Counting pairs of pixels as 16-bit values halves both,
    in slices of 4 Mi pairs (32 MB); each pair's two bytes then count separately.
    """
    flat = np.ascontiguousarray(x).reshape(-1)
    counts = np.bincount(flat[flat.size - flat.size % 2 :], minlength=256)  # an odd last pixel on its own
    pairs = flat[: flat.size - flat.size % 2].view(np.uint16)
    joint = np.zeros(1 << 16, dtype=np.int64)
    for s in range(0, pairs.size, 1 << 22):
        joint += np.bincount(pairs[s : s + (1 << 22)], minlength=1 << 16)
    grid = joint.reshape(256, 256)  # [high byte][low byte] of each pair: both are pixels
    return counts + grid.sum(axis=0) + grid.sum(axis=1)


def standardize(ds: Dataset, train: Split) -> Dataset:
    """Inputs with zero mean and unit variance over the training split's pixels.

    One mean and one standard deviation for all features, like torchvision's
    ``Normalize((0.1307,), (0.3081,))`` for MNIST; computed from the training
    split only (never validation or test), exactly, from a histogram for uint8.
    """
    x = train.x
    if x.dtype == np.uint8:
        counts = uint8_histogram(x).astype(np.float64)
        v = np.arange(256, dtype=np.float64)
        n = counts.sum()
        mean = float((counts * v).sum() / n)
        var = float((counts * (v - mean) ** 2).sum() / n)
    else:
        mean = float(x.mean(dtype=np.float64))
        var = float(sum(((c.astype(np.float64) - mean) ** 2).sum() for c in np.array_split(x, 64)) / x.size)
    std = var**0.5 if var > 0 else 1.0
    mean_in, std_in = mean * ds.scale + ds.shift, std * ds.scale
    return dataclasses.replace(ds, scale=ds.scale / std_in, shift=(ds.shift - mean_in) / std_in)


def split_train_val(ds: Dataset, validation: int, source: str = "data.validation") -> tuple[Split, Split | None]:
    """Hold the last ``validation`` training examples out (views, no copy)."""
    n = ds.x_train.shape[0]
    if validation >= n:
        raise DataError(
            f"{source}: holds out {validation:,} examples but {ds.name} has only {n:,} training examples"
        )
    cut = n - validation
    train = Split(ds.x_train[:cut], ds.y_train[:cut])
    val = Split(ds.x_train[cut:], ds.y_train[cut:]) if validation else None
    return train, val


def prepare_splits(ds: Dataset, validation: int, normalize: bool) -> tuple[Dataset, Split, Split | None]:
    """The dataset as a run sees it: the validation examples held out, and the inputs
    standardized with the training split's statistics when ``normalize`` (``data.normalize``)."""
    train, val = split_train_val(ds, validation)
    if normalize:
        ds = standardize(ds, train)
    return ds, train, val


MAX_CLASSES = 10_000


@dataclass(frozen=True)
class DatasetSummary:
    """What ``mlpkit data info`` shows about a loaded dataset."""

    name: str
    source: str
    x_train_shape: list[int]
    x_test_shape: list[int]
    image_shape: list[int]
    dtype: str
    pixel_min: float
    pixel_max: float
    scale: float
    num_classes: int
    class_names: list[str]
    train_per_class: list[int]
    test_per_class: list[int]
    memory_bytes: int


def summarize(ds: Dataset) -> DatasetSummary:
    lo = float(min(ds.x_train.min(), ds.x_test.min()))
    hi = float(max(ds.x_train.max(), ds.x_test.max()))
    return DatasetSummary(
        ds.name, ds.source, list(ds.x_train.shape), list(ds.x_test.shape), list(ds.image_shape), str(ds.x_train.dtype),
        lo, hi, ds.scale, ds.num_classes, list(ds.class_names),
        np.bincount(ds.y_train, minlength=ds.num_classes).tolist(),
        np.bincount(ds.y_test, minlength=ds.num_classes).tolist(),
        int(ds.x_train.nbytes + ds.x_test.nbytes + ds.y_train.nbytes + ds.y_test.nbytes),
    )
