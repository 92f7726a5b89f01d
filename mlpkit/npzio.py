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

import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MlpkitError

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
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, not {what}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
        raise fail("not a zip archive of .npy arrays") from None
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror or e})") from None
    arrays: dict[str, np.ndarray] = {}
    total = 0
    with zf:
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
            except Exception as e:  # noqa: BLE001 - any malformed byte: one line, never a traceback
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
