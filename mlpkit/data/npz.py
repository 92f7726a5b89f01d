"""Reading .npz files that may be hostile: sizes checked before anything is allocated.

An .npz is a zip archive of .npy arrays. ``numpy.load`` trusts each array's
header: a header that claims 2⁴⁰ elements makes it allocate terabytes, a
malformed one raises tokenizer errors, and a plain .npy or a text file gets
advice about loading "unsafely". This reader checks, for every member, the
name, the header (bounded in length, parsed by NumPy's own header reader), the
dtype (numbers and text only: never objects, so nothing is ever unpickled) and
that the claimed size fits in the member's real, bounded length — and only
then reads the bytes. Every problem is one error naming the file.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlpkit.data.core import MAX_CLASSES, Dataset
from mlpkit.errors import DataError, MlpkitError
from mlpkit.reader import NotARegularFile, open_regular

FLOAT32_MAX = float(np.finfo(np.float32).max)
_EPOCH_1980 = (1980, 1, 1, 0, 0, 0)


MAX_MEMBERS = 4096
MAX_HEADER = 1 << 14  # bytes of an .npy header; NumPy writes fewer than 200 for these arrays
MAX_JSON = 1 << 24  # characters of JSON text stored in an array
ALLOWED_KINDS = "biufU"  # bool, integers, floats, unicode text


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_npz(path: str | Path, error: type[MlpkitError], what: str, max_bytes: int = 1 << 34
             ) -> dict[str, np.ndarray]:
    """Every array of the .npz at ``path``, or ``error`` naming the file and what is wrong.

    Args:
        error: the exception class to raise (a CheckpointError, a DataError...).
        what: what the file should be, for messages ("an mlpkit weights file").
        max_bytes: the most array data the file may hold in all.
    """
    path = Path(path)

    def fail(why: str) -> MlpkitError:
        return error(f"{path}: is not {what} ({why})")

    try:
        fh = open_regular(path)  # a FIFO or a device is refused, never waited on
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (IsADirectoryError, NotARegularFile):
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise error(f"{path}: is {kind}, not {what}") from None
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror or e})") from None
    with fh:
        try:
            zf = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
            raise fail("not a zip archive of .npy arrays") from None
        except OSError as e:
            raise error(f"{path}: cannot be read ({e.strerror or e})") from None
        with zf:
            return _read_members(zf, fail, max_bytes)


def _read_members(zf: zipfile.ZipFile, fail: Callable[[str], MlpkitError], max_bytes: int) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    total = 0
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise fail(f"{len(infos):,} members; at most {MAX_MEMBERS:,}")
    for info in infos:
        name = info.filename
        if not name.endswith(".npy") or len(name) > 256:
            raise fail(f"member {_short(name, 60)!r} is not an .npy array")
        key = name[:-4]
        if key in arrays:
            raise fail(f"member {_short(name, 60)!r} appears twice")
        try:
            arr, nbytes = _read_member(zf, info, max_bytes - total)
        except MlpkitError:
            raise
        except _Refused as e:
            raise fail(f"array {_short(key, 60)!r}: {e}") from None
        except Exception as e:
            raise fail(f"array {_short(key, 60)!r} cannot be read: {type(e).__name__}") from None
        total += nbytes
        arrays[key] = arr
    return arrays


class _Refused(Exception):
    """A member that is well formed but not acceptable (too big, wrong dtype)."""


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> tuple[np.ndarray, int]:
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh, max_header_size=MAX_HEADER)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh, max_header_size=MAX_HEADER)
        else:
            raise _Refused(f"unknown .npy format version {version}")
        if dtype.hasobject or dtype.kind not in ALLOWED_KINDS or dtype.fields is not None:
            raise _Refused(f"dtype {_short(str(dtype), 40)} is not a number or text array")
        count = math.prod(shape)  # Python ints: no overflow
        nbytes = count * dtype.itemsize
        if nbytes > info.file_size:
            raise _Refused(f"its header claims {count:,} elements, more than the file holds")
        if nbytes > budget:
            raise _Refused(f"{nbytes:,} bytes of data is more than allowed")
        data = fh.read(nbytes)
        if len(data) != nbytes:
            raise _Refused("the file ends early")
    arr = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return arr.copy(order="K"), nbytes


def json_of(arrays: dict[str, np.ndarray], key: str, error: type[MlpkitError], path: str | Path) -> Any:
    """The JSON document stored as a 0-d text array under ``key``; bounded in size and depth."""
    arr = arrays.get(key)
    if arr is None:
        raise error(f"{path}: has no {key}")
    if arr.dtype.kind != "U" or arr.shape != ():
        raise error(f"{path}: {key} is not a JSON text")
    text = str(arr)
    if len(text) > MAX_JSON:
        raise error(f"{path}: {key} holds {len(text):,} characters; at most {MAX_JSON:,}")
    try:
        return json.loads(text)
    except RecursionError:
        raise error(f"{path}: {key} is nested too deeply") from None
    except ValueError as e:
        raise error(f"{path}: {key} is not valid JSON ({_short(str(e), 60)})") from None


# --------------------------------------------------------------------------- .npz

_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_npz(path: str | Path) -> Dataset:
    """A user's dataset: an .npz holding x_train, y_train, x_test, y_test.

    Images may be uint8 (scaled by 1/255) or floats (used as they are, within
    float32's range); any shape per example is flattened, and must hold at
    least one feature. Labels are integers 0..C-1 (C ≤ MAX_CLASSES) and every
    class has at least one training example. Everything is checked before
    any work, with sizes read from the array headers before anything is
    allocated (``npzio``).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: dataset file not found")
    arrs = read_npz(path, DataError, "a readable .npz dataset")
    missing = [k for k in _NPZ_KEYS if k not in arrs]
    if missing:
        raise DataError(f"{path}: is missing the array{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    xs = []
    for split in ("train", "test"):
        x, y = arrs[f"x_{split}"], arrs[f"y_{split}"]
        if x.ndim < 2 or x.shape[0] == 0 or math.prod(x.shape[1:]) == 0:
            raise DataError(f"{path}: x_{split} must be (N, features...) with N > 0 and at least one feature, got "
                            f"shape {x.shape}")
        if y.shape != (x.shape[0],):
            raise DataError(f"{path}: y_{split} must have shape ({x.shape[0]},) to match x_{split}, got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{path}: y_{split} must hold integer labels, got {y.dtype}")
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= MAX_CLASSES:
            bad = lo if lo < 0 else hi
            raise DataError(f"{path}: y_{split} has the label {bad}; labels are class numbers 0..C-1 with C at most "
                            f"{MAX_CLASSES:,}")
        if not (x.dtype == np.uint8 or np.issubdtype(x.dtype, np.floating)):
            raise DataError(f"{path}: x_{split} must be uint8 or float, got {x.dtype}")
        if np.issubdtype(x.dtype, np.floating):
            with np.errstate(all="ignore"):
                if not np.isfinite(x).all():
                    raise DataError(f"{path}: x_{split} holds NaN or infinite values")
                if float(np.abs(x).max()) > FLOAT32_MAX:
                    raise DataError(f"{path}: x_{split} holds values beyond float32's range (±{FLOAT32_MAX:.3g}); "
                                    "rescale the data")
        xs.append(x.reshape(x.shape[0], -1))
    if xs[0].shape[1] != xs[1].shape[1]:
        raise DataError(f"{path}: x_train has {xs[0].shape[1]} features per example but x_test has {xs[1].shape[1]}")
    if xs[0].dtype != xs[1].dtype:
        raise DataError(f"{path}: x_train is {xs[0].dtype} but x_test is {xs[1].dtype}")
    num_classes = int(max(arrs["y_train"].max(), arrs["y_test"].max())) + 1
    counts = np.bincount(arrs["y_train"].astype(np.int64), minlength=num_classes)
    absent = np.flatnonzero(counts == 0)
    if num_classes < 2:
        raise DataError(f"{path}: y_train and y_test hold a single class (0); a classifier needs at least two")
    if absent.size:
        raise DataError(f"{path}: y_train has no example of class {int(absent[0])} (labels run 0..{num_classes - 1}, "
                        f"{absent.size} of them unused); number the classes 0..C-1 without gaps")
    is_u8 = xs[0].dtype == np.uint8
    return Dataset(
        path.stem,
        xs[0] if is_u8 else xs[0].astype(np.float32),
        arrs["y_train"].astype(np.int64),
        xs[1] if is_u8 else xs[1].astype(np.float32),
        arrs["y_test"].astype(np.int64),
        1.0 / 255.0 if is_u8 else 1.0,
        num_classes,
        tuple(str(i) for i in range(num_classes)),
        tuple(arrs["x_train"].shape[1:]),
        str(path),
        location=str(path.resolve()),
        pixel_max=255.0 if is_u8 else 1.0,
    )


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
