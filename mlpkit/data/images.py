"""Users' own digits: image files, folders and arrays, read as a person sees them and prepared the way the
run's dataset was made (``data.preparation``: MNIST's, the UCI digits', or none).

``read_image`` decodes a picture to grayscale (turned upright, transparency on white, deep pictures scaled by
their own range), checked before it is decoded: its size, and its pixel count against a decompression bomb.
``prepare`` reads the ink off it and makes it the dataset's input (``mlpkit.data.preparation``). The result
is in [0, 1]; the caller scales it to the run's stored pixel range.
"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.data.core import DataWarning
from mlpkit.errors import DataError
from mlpkit.reader import open_regular, read_bytes

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
ARRAY_SUFFIXES = (".npy", ".npz", ".csv")
MAX_FILE_BYTES = 64 << 20
MAX_PIXELS = 25_000_000  # a 5000×5000 photo; anything larger is refused, not decoded
MAX_ITEMS = 100_000


def _pil():
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        raise DataError("reading images needs Pillow; install it with pip install pillow") from None
    return Image


def read_image(path: Path) -> np.ndarray:
    """A grayscale (H, W) float array in [0, 255]; one DataError naming the file for anything unreadable."""
    image_mod = _pil()
    try:
        fh = open_regular(path)  # a FIFO or a device is refused, never waited on
        size = os.fstat(fh.fileno()).st_size
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None
    if size == 0 or size > MAX_FILE_BYTES:
        fh.close()
        raise DataError(f"{path}: is empty" if size == 0 else
                        f"{path}: is {size:,} bytes; an image is at most {MAX_FILE_BYTES:,}")
    try:
        with fh, warnings.catch_warnings():
            warnings.simplefilter("error", image_mod.DecompressionBombWarning)
            with image_mod.open(fh) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise DataError(f"{path}: is {w}×{h} pixels; at most {MAX_PIXELS:,} are decoded")
                im.load()
                return _gray(image_mod, im)
    except DataError:
        raise
    except (image_mod.DecompressionBombError, image_mod.DecompressionBombWarning):
        raise DataError(f"{path}: claims more pixels than an image may have (a decompression bomb?)") from None
    except Exception as e:
        raise DataError(f"{path}: is not a readable image ({type(e).__name__})") from None


def _gray(image_mod: Any, im: Any) -> np.ndarray:
    """A decoded picture as the grayscale a person sees, (H, W) float32 in [0, 255]:

    - turned upright by its EXIF Orientation tag (phone cameras store pictures rotated and say so);
    - transparency composited on white (paint programs export dark ink on a transparent background);
    - 16-bit and 32-bit pictures scaled by their format's range, float ones from [0, 1] or else their own
      range (``convert("L")`` clips all of them to 0..255).
    """
    from PIL import ImageOps

    im = ImageOps.exif_transpose(im)
    if im.mode in ("I", "F") or im.mode.startswith("I;"):
        a = np.asarray(im.convert("F") if im.mode != "F" else im, dtype=np.float64)
        a = np.where(np.isfinite(a), a, 0.0)
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if im.mode != "F" and lo >= 0:  # integers: by their format's range (16-bit, or 32-bit holding 16-bit)
            top = 65535.0 if hi <= 65535 else hi
            return (a * (255.0 / top)).astype(np.float32)
        if lo >= 0 and hi <= 1:  # floats in [0, 1], the usual convention
            return (a * 255.0).astype(np.float32)
        span = hi - lo  # any other range: its own, black to white
        return ((a - lo) * (255.0 / span) if span > 0 else np.zeros_like(a)).astype(np.float32)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info) or \
            (im.mode in ("L", "RGB") and "transparency" in im.info):
        rgba = im.convert("RGBA")
        page = image_mod.new("RGBA", rgba.size, (255, 255, 255, 255))
        page.alpha_composite(rgba)
        im = page
    return np.asarray(im.convert("L"), dtype=np.float32)


def prepare(gray: np.ndarray, side: int = 28, source: str = "image", preparation: str = "mnist") -> np.ndarray:
    """A digit picture (H, W) in [0, 255] as the model's (side, side) input in [0, 1] (``data.preparation``)."""
    return prepare_with_doubts(gray, side, source, preparation)[0]


def prepare_with_doubts(gray: np.ndarray, side: int = 28, source: str = "image", preparation: str = "mnist"
                        ) -> tuple[np.ndarray, list[str]]:
    """``prepare``, and why the picture may not be a single digit (one sentence each, for a warning)."""
    from mlpkit.data.preparation import find_ink, prepare_ink

    if preparation == "none":
        if gray.shape != (side, side):
            raise DataError(f"{source}: is {gray.shape[1]}×{gray.shape[0]} pixels; this run's data has no known "
                            f"preparation, so a picture must already be {side}×{side} (or give --prepare mnist)")
        return np.clip(np.asarray(gray, dtype=np.float32) / 255.0, 0.0, 1.0), []
    found = find_ink(gray, source)
    return prepare_ink(found.ink, side, preparation), found.doubts


def thumbnail(gray: np.ndarray, rows: int, max_width: int | None = None) -> np.ndarray:
    """A picture as given, (H, W) in [0, 255], reduced to ``rows`` rows (the aspect ratio kept, the width at
    most ``max_width``, by default 2 × rows) and scaled to [0, 1]: beside what the model saw, for ``--show``."""
    from mlpkit.data.preparation import resize

    h, w = gray.shape
    width = max(1, min(round(w * rows / h), max_width or 2 * rows))
    return np.clip(resize(np.asarray(gray, dtype=np.float32), width, rows) / 255.0, 0.0, 1.0)


def _array_items(arr: np.ndarray, side: int, name: str) -> list[tuple[str, np.ndarray, bool]]:
    """Rows of an array: (label, image, already in the model's format)."""
    if arr.dtype.kind not in "uif" or arr.size == 0:
        raise DataError(f"{name}: must hold numbers, got {arr.dtype} of shape {arr.shape}")
    if arr.ndim == 2 and arr.shape[1] == side * side:
        arr = arr.reshape(-1, side, side)
    elif arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise DataError(f"{name}: must be N×H×W or N×{side * side} images, got shape {arr.shape}")
    if len(arr) > MAX_ITEMS:
        raise DataError(f"{name}: holds {len(arr):,} images; at most {MAX_ITEMS:,} at a time")
    # Checked in the array's own type, before any cast: 1e300 must not overflow float32 into a NumPy warning.
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DataError(f"{name}: holds NaN or infinite values")
    top = float(arr.max())
    hi = 255.0 if arr.dtype.kind in "ui" or top > 1.0 else 1.0
    if float(arr.min()) < 0 or top > hi:
        raise DataError(f"{name}: pixels must lie in [0, 255] (integers) or [0, 1] (floats)")
    a = arr.astype(np.float32) / hi * 255.0
    ready = a.shape[1:] == (side, side)
    return [(f"{name}[{i}]", img, ready) for i, img in enumerate(a)]


def _csv_rows(path: Path, side: int) -> np.ndarray:
    try:
        text = read_bytes(path, MAX_FILE_BYTES).decode("utf-8-sig")  # -sig: a byte-order mark is not data
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: is not a readable CSV file ({type(e).__name__})") from None
    rows = []
    for i, row in enumerate(csv.reader(io.StringIO(text))):
        if not row or (i == 0 and not is_number(row[0])):
            continue  # a header
        if len(row) not in (side * side, side * side + 1):
            raise DataError(f"{path}: row {i + 1} has {len(row)} values; a {side}×{side} image needs {side * side} "
                            f"(or one more: a label first)")
        try:
            rows.append([float(v) for v in row[-side * side:]])
        except ValueError:
            raise DataError(f"{path}: row {i + 1} holds a value that is not a number") from None
    if not rows:
        raise DataError(f"{path}: holds no rows of pixels")
    return np.asarray(rows, dtype=np.float32)


def is_number(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def load_inputs(inputs: list[str | Path | np.ndarray], side: int) -> Iterator[tuple[str, np.ndarray, bool]]:
    """Every image the inputs name, one at a time, as (label, (H, W) array in [0, 255], already the model's size).

    A generator: the caller prepares each picture and lets it go before the next is decoded, so memory holds one
    full-size picture at a time, not all of them (120 photos of 3000×3000 ran out of memory).
    """
    from mlpkit.data import npz as npzio

    count = 0

    def counted(p: Path, found: list[tuple[str, np.ndarray, bool]] | None = None, n: int = 1) -> None:
        nonlocal count
        count += len(found) if found is not None else n
        if count > MAX_ITEMS:
            raise DataError(f"{p}: more than {MAX_ITEMS:,} images at a time")

    for inp in inputs:
        if isinstance(inp, np.ndarray):  # images in memory (the Python API): (N, H, W), (H, W) or (N, H·W)
            found = _array_items(inp, side, "array")
            counted(Path("array"), found)
            yield from found
            continue
        p = Path(inp)
        if p.is_dir():
            entries = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
            files = [f for f in entries if f.suffix.lower() in IMAGE_SUFFIXES]
            if not files:
                raise DataError(f"{p}: holds no image files ({', '.join(IMAGE_SUFFIXES[:4])}, ...)")
            others = [f.name for f in entries if f.suffix.lower() not in IMAGE_SUFFIXES]
            if others:  # said, not silent: a .heic or a misnamed picture would otherwise vanish from the results
                shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
                warnings.warn(f"{p}: skipped {len(others)} file{'s' if len(others) > 1 else ''} that "
                              f"{'are' if len(others) > 1 else 'is'} not a picture ({shown}); pictures end in "
                              f"{', '.join(IMAGE_SUFFIXES[:4])}, ...", DataWarning, stacklevel=2)
            counted(p, n=len(files))
            for f in files:
                yield str(f), read_image(f), False
        elif not p.exists():
            raise DataError(f"{p}: no such file or folder")
        elif p.suffix.lower() in (".npz", ".npy", ".csv"):
            if p.suffix.lower() == ".npz":
                arrays = npzio.read_npz(p, DataError, "a readable .npz of images", max_bytes=4 * MAX_FILE_BYTES)
                if not arrays:
                    raise DataError(f"{p}: holds no arrays")
                key = "x" if "x" in arrays else ("x_test" if "x_test" in arrays else next(iter(arrays)))
                found = _array_items(arrays[key], side, f"{p}:{key}")
            elif p.suffix.lower() == ".npy":
                found = _array_items(_read_npy(p), side, str(p))
            else:
                found = _array_items(_csv_rows(p, side), side, str(p))
            counted(p, found)
            yield from found
        else:
            counted(p)
            yield str(p), read_image(p), False


def _read_npy(p: Path) -> np.ndarray:
    """A .npy file's array, its header checked before its data is read (never unpickled)."""
    try:
        arr = np.load(io.BytesIO(read_bytes(p, MAX_FILE_BYTES * 4)), allow_pickle=False)
        if not isinstance(arr, np.ndarray) or arr.dtype.hasobject:
            raise ValueError("not a plain array")
        if arr.nbytes > MAX_FILE_BYTES * 4:
            raise DataError(f"{p}: holds {arr.nbytes:,} bytes of images; at most {MAX_FILE_BYTES * 4:,}")
        return np.array(arr)
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{p}: is not a readable .npy array ({type(e).__name__})") from None


def to_model_input(img01: np.ndarray, record: dict) -> np.ndarray:
    """An image in [0, 1] in the run's units: stored pixels (0..pixel_max) · scale + shift."""
    stored = np.round(img01 * record["pixel_max"]) if record["pixel_max"] != 1.0 else img01
    return stored * record["scale"] + record["shift"]


def block_art(img01: np.ndarray) -> str:
    """The image in the terminal: one character per pixel, from blank to full block."""
    ramp = " ░▒▓█"
    return "\n".join("".join(ramp[min(4, math.floor(v * 5))] * 2 for v in row) for row in img01)
