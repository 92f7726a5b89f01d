"""Users' own datasets: a folder of images in torchvision's ImageFolder layout, or a CSV of pixel rows.

ImageFolder: one subfolder per class (the class names, sorted, give the labels
0..C-1), optionally under ``train/`` and ``test/``; without them a seeded
``test_fraction`` of each class is held out as the test split. Every image is
read as grayscale and, with ``prepare`` (the default), prepared to
``image_size``×``image_size`` the way MNIST was made (``mlpkit.data.images``);
without it all images must already share one size.

CSV: ``label,pixel0,pixel1,…`` rows (the common Kaggle layout), header optional;
the label column is the one named ``label_column`` in the header, else the
first. The pixel count must be a square; values 0..255 (or 0..1).

Either is loaded once into uint8 arrays and cached as an .npz under the cache
folder, keyed by the files' names, sizes and modification times and the
options: a changed, added or removed file makes a new cache entry.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlpkit.data.core import MAX_CLASSES
from mlpkit.data.images import IMAGE_SUFFIXES, MAX_FILE_BYTES, is_number, prepare, read_image
from mlpkit.errors import DataError
from mlpkit.reader import read_bytes

MAX_IMAGES = 2_000_000
PARALLEL_FROM = 2000  # images; below this, one process is faster than starting workers


@dataclass(frozen=True)
class FolderOptions:
    image_size: int = 28
    prepare: bool = True
    test_fraction: float = 0.2
    label_column: str = "label"
    seed: int = 0


def _class_dirs(root: Path) -> list[Path]:
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not dirs:
        raise DataError(f"{root}: holds no class folders (ImageFolder layout: one subfolder of images per class)")
    if len(dirs) < 2:
        raise DataError(f"{root}: holds a single class folder ({dirs[0].name}); a classifier needs at least two")
    if len(dirs) > MAX_CLASSES:
        raise DataError(f"{root}: holds {len(dirs):,} class folders; at most {MAX_CLASSES:,}")
    return dirs


def _images_of(d: Path) -> list[Path]:
    files = sorted(p for p in d.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DataError(f"{d}: the class folder is empty")
    for f in files:
        if f.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"{f}: is not an image file ({', '.join(IMAGE_SUFFIXES[:4])}, ...)")
    return files


def _scan(root: Path) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    """Class names and, per split ("all", or "train" and "test"), (file, label) pairs."""
    subs = {p.name for p in root.iterdir() if p.is_dir()}
    splits = ("train", "test") if {"train", "test"} <= subs else ("all",)
    names: list[str] | None = None
    files: dict[str, list[tuple[Path, int]]] = {}
    for split in splits:
        base = root if split == "all" else root / split
        dirs = _class_dirs(base)
        these = [d.name for d in dirs]
        if names is not None and these != names:
            raise DataError(f"{base}: has the classes {', '.join(these[:5])}, but {root / 'train'} has "
                            f"{', '.join(names[:5])}")
        names = these
        files[split] = [(f, label) for label, d in enumerate(dirs) for f in _images_of(d)]
    total = sum(len(v) for v in files.values())
    if total > MAX_IMAGES:
        raise DataError(f"{root}: holds {total:,} images; at most {MAX_IMAGES:,}")
    return names or [], files


def _key(root: Path, files: dict[str, list[tuple[Path, int]]], opts: FolderOptions) -> str:
    h = hashlib.sha256(json.dumps([str(root.resolve()), opts.image_size, opts.prepare, opts.test_fraction,
                                   opts.seed]).encode())
    for split, items in files.items():
        for f, label in items:
            st = f.stat()
            # ctime too: any write changes it, and unlike mtime no program can set it back (os.utime cannot)
            h.update(f"{split}\0{f.relative_to(root)}\0{label}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}"
                     "\n".encode())
    return h.hexdigest()[:32]


def _load_one(args: tuple[str, int, bool]) -> np.ndarray:
    path, side, do_prepare = args
    img = read_image(Path(path))
    if do_prepare:
        return np.round(prepare(img, side, path) * 255).astype(np.uint8)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _load_images(paths: list[Path], opts: FolderOptions) -> np.ndarray:
    jobs = [(str(p), opts.image_size, opts.prepare) for p in paths]
    if len(jobs) >= PARALLEL_FROM and (os.cpu_count() or 1) > 1:
        with ProcessPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            imgs = list(pool.map(_load_one, jobs, chunksize=256))
    else:
        imgs = [_load_one(j) for j in jobs]
    shape = imgs[0].shape
    for p, img in zip(paths, imgs):
        if img.shape != shape:
            raise DataError(f"{p}: is {img.shape[1]}×{img.shape[0]} but {paths[0].name} is {shape[1]}×{shape[0]}; "
                            "images of mixed sizes need data.prepare (the MNIST-style preparation) to be one size")
    return np.stack(imgs)


def _split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of train and test: a seeded ``fraction`` of each class (at least one) held out."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = max(1, round(len(idx) * fraction)) if len(idx) > 1 else 0
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_image_folder(root: Path, opts: FolderOptions, cache: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """(arrays x_train, y_train, x_test, y_test, and class names) of an ImageFolder, from the cache when current."""
    names, files = _scan(root)
    key = _key(root, files, opts)
    cached = cache / f"{key}.npz"
    if cached.is_file():
        from mlpkit.data import npz as npzio

        try:
            arrays = npzio.read_npz(cached, DataError, "a cached dataset")
            if {"x_train", "y_train", "x_test", "y_test"} <= set(arrays):
                return arrays, names
        except DataError:
            pass  # a damaged cache entry is rebuilt
    if "all" in files:
        paths = [f for f, _ in files["all"]]
        x, y = _load_images(paths, opts), np.array([label for _, label in files["all"]], dtype=np.int64)
        tr, te = _split(y, opts.test_fraction, opts.seed)
        arrays = {"x_train": x[tr], "y_train": y[tr], "x_test": x[te], "y_test": y[te]}
    else:
        arrays = {}
        for split in ("train", "test"):
            paths = [f for f, _ in files[split]]
            arrays[f"x_{split}"] = _load_images(paths, opts)
            arrays[f"y_{split}"] = np.array([label for _, label in files[split]], dtype=np.int64)
        if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
            raise DataError(f"{root / 'test'}: its images are not the size of {root / 'train'}'s")
    _write_cache(cached, arrays)
    return arrays, names


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    from mlpkit.data.npz import npz_bytes
    from mlpkit.writer import atomic_write, make_folder

    try:
        make_folder(path.parent)
        atomic_write(path, npz_bytes(arrays))
    except OSError:
        pass  # no cache: the next load reads the images again


def load_csv(path: Path, opts: FolderOptions) -> tuple[dict[str, np.ndarray], list[str]]:
    """(arrays, class names) of a CSV of label + pixel rows, split by ``test_fraction``."""
    try:
        # 256 MB of text at most (MNIST as a CSV is about 110 MB); -sig: a byte-order mark (Excel's "CSV UTF-8")
        text = read_bytes(path, 4 * MAX_FILE_BYTES).decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: is not a readable CSV file ({type(e).__name__})") from None
    reader = csv.reader(io.StringIO(text))
    rows = [r for r in reader if r]
    if not rows:
        raise DataError(f"{path}: is empty")
    label_at = 0
    header: list[str] | None = None
    if not is_number(rows[0][0]) or not all(is_number(v) for v in rows[0]):
        header = [h.strip() for h in rows.pop(0)]
        if opts.label_column in header:
            label_at = header.index(opts.label_column)
        else:
            raise DataError(f"{path}: its header has no column {opts.label_column!r} (data.label_column)")
    if not rows:
        raise DataError(f"{path}: holds a header but no rows")
    width = len(rows[0])
    if header is not None and len(header) != width:
        raise DataError(f"{path}: its header has {len(header)} columns but its first row has {width}")
    side = math.isqrt(width - 1)
    if width < 2 or side * side != width - 1:
        raise DataError(f"{path}: rows have {width - 1} pixel values, not a square image (e.g. 784 = 28×28)")
    try:
        table = np.array(rows, dtype=np.float64)
    except ValueError:
        bad = next(i for i, r in enumerate(rows) if len(r) != width or not all(is_number(v) for v in r))
        raise DataError(f"{path}: row {bad + 1} does not hold {width} numbers") from None
    y = table[:, label_at]
    x = np.delete(table, label_at, axis=1)
    if not np.isfinite(y).all() or not np.all(y == np.round(y)) or y.min() < 0 or y.max() >= MAX_CLASSES:
        raise DataError(f"{path}: labels must be whole numbers 0..C-1, with at most {MAX_CLASSES:,} classes")
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 255:
        raise DataError(f"{path}: pixel values must lie in 0..255 (or 0..1)")
    if x.max() <= 1.0:
        x = x * 255
    images = np.round(x).astype(np.uint8).reshape(-1, side, side)
    y = y.astype(np.int64)
    tr, te = _split(y, opts.test_fraction, opts.seed)
    return {"x_train": images[tr], "y_train": y[tr], "x_test": images[te], "y_test": y[te]}, [str(c) for c in
                                                                                    range(int(y.max()) + 1)]
