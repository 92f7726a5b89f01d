"""Reading MNIST's IDX format (gzip or raw), checked against its header before anything is allocated."""

from __future__ import annotations

import contextlib
import zlib
from pathlib import Path

import numpy as np

from mlpkit.errors import DataError
from mlpkit.reader import open_stream

# --------------------------------------------------------------------------- IDX

_IDX_MAGIC = {1: 0x00000801, 3: 0x00000803}
_MAX_IDX_BYTES = 1 << 31


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes with ``ndim`` dimensions (gzip or raw).

    Validates the magic number, the dimension count and the exact file length.
    Returns a uint8 array of the stored shape, decompressed straight into it
    (no second copy of the data in memory).
    """
    path = Path(path)
    header = 4 + 4 * ndim
    with contextlib.ExitStack() as stack:
        try:
            fh = stack.enter_context(open_stream(path))
        except OSError as e:
            raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None
        try:
            head = fh.read(header)
            if len(head) < header:
                raise DataError(f"{path}: is too short to be an IDX file ({len(head)} bytes)")
            magic = int.from_bytes(head[:4], "big")
            if magic != _IDX_MAGIC[ndim]:
                raise DataError(
                    f"{path}: wrong IDX magic number 0x{magic:08x}, expected 0x{_IDX_MAGIC[ndim]:08x} "
                    f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''})"
                )
            dims = tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
            size = int(np.prod(dims, dtype=np.int64))
            if size > _MAX_IDX_BYTES:
                raise DataError(f"{path}: its header {dims} promises {size:,} bytes, more than {_MAX_IDX_BYTES:,}")
            out = np.empty(size, dtype=np.uint8)
            view, got = out.data, 0  # a memoryview of out's bytes
            while got < size:  # 1 MB at a time: gzip's reader would build one whole-file copy
                n = fh.readinto(view[got : got + (1 << 20)])
                if not n:
                    break
                got += n
            extra = len(fh.read(1))
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: is not a valid gzip file ({e})") from None
    if got != size or extra:
        have = f"{got:,}" if not extra else f"more than {size:,}"
        raise DataError(
            f"{path}: holds {have} data bytes but its header {dims} promises {size:,}; the file is truncated "
            f"or corrupt"
        )
    return out.reshape(dims)
