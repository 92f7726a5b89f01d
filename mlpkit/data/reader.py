"""One way in, first part: files a user hands mlpkit are opened here, regular files only, never blocking.

``open_regular`` opens without blocking (``O_NONBLOCK``: a FIFO's open would otherwise wait for a writer for
ever) and refuses anything that is not a regular file (a FIFO, a device such as /dev/zero, a socket, a folder),
whatever a link points at. ``read_bytes`` adds a bound on the size, checked before reading. Errors other than
"not a regular file" are the OSError itself, for the caller's own one-line message.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from mlpkit.errors import DataError

_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


class NotARegularFile(DataError):
    """A path names a FIFO, a device, a socket or a folder where a file was expected."""


def open_regular(path: str | Path) -> BinaryIO:
    """A binary file object of a regular file; NotARegularFile for anything else."""
    fd = os.open(path, _FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else \
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else \
                "not a regular file"
            raise NotARegularFile(f"{path}: is {kind}, not a file mlpkit can read")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # a regular file: reads never wait anyway
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | Path, max_bytes: int) -> bytes:
    """A regular file's bytes, refused (DataError) if it holds more than ``max_bytes``."""
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise DataError(f"{path}: is larger than {max_bytes:,} bytes")
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew while being read
        raise DataError(f"{path}: is larger than {max_bytes:,} bytes")
    return data
