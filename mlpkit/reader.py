"""One way in: every file mlpkit reads is opened here, regular files only, never blocking, bounded.

``open_regular`` opens without blocking (``O_NONBLOCK``: a FIFO's open would otherwise wait for a writer for
ever) and refuses anything that is not a regular file (a FIFO, a device such as /dev/zero, a socket, a folder),
whatever a link points at; ``follow_links=False`` refuses a link itself (run files and locks, which mlpkit
wrote and which a link in their place would redirect). ``read_bytes`` and ``read_text`` add a bound on the
size, checked before reading; ``open_stream`` gives a file's contents, gzip or not, for readers that bound
what they take themselves. Errors other than "not a regular file" are the OSError itself, for the caller's own
one-line message.

The writer is ``mlpkit.writer``; ``tests/test_structure.py`` finds no other place in mlpkit that opens a file.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from mlpkit.errors import DataError

_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # POSIX; where it is missing, the lstat below refuses the link
GZIP_MAGIC = b"\x1f\x8b"


class NotARegularFile(DataError):
    """A path names a FIFO, a device, a socket, a folder or (where links are refused) a link; ``kind`` says
    which ("a folder", "a FIFO", "a device", "a socket", "a symbolic link")."""

    def __init__(self, path: str | Path, kind: str) -> None:
        super().__init__(f"{path}: is {kind}, not a file mlpkit can read")
        self.kind = kind


def _kind(mode: int) -> str:
    return "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else \
        "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else \
        "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file"


def open_regular(path: str | Path, *, follow_links: bool = True) -> io.BufferedReader:
    """A binary file object of a regular file; NotARegularFile for anything else."""
    if not follow_links and not _NOFOLLOW and os.path.islink(path):
        raise NotARegularFile(path, "a symbolic link")
    try:
        fd = os.open(path, _FLAGS | (0 if follow_links else _NOFOLLOW))
    except OSError as e:
        if e.errno == errno.ELOOP and not follow_links:  # O_NOFOLLOW's answer to a link
            raise NotARegularFile(path, "a symbolic link") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(path, _kind(mode))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # a regular file: reads never wait anyway
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | Path, max_bytes: int, *, follow_links: bool = True) -> bytes:
    """A regular file's bytes, refused (DataError) if it holds more than ``max_bytes``."""
    with open_regular(path, follow_links=follow_links) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise DataError(f"{path}: is larger than {max_bytes:,} bytes")
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew while being read
        raise DataError(f"{path}: is larger than {max_bytes:,} bytes")
    return data


def read_text(path: str | Path, max_bytes: int, *, follow_links: bool = True, encoding: str = "utf-8") -> str:
    """A regular file's text (``read_bytes``), refused (DataError, naming the byte) if it is not ``encoding``."""
    data = read_bytes(path, max_bytes, follow_links=follow_links)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: is not {encoding.upper().replace('-SIG', '')} text (byte {e.start})") from None


@contextlib.contextmanager
def open_stream(path: str | Path) -> Iterator[io.BufferedIOBase]:
    """A regular file's contents as a stream, decompressed where the file is gzip (its first two bytes say so).
    The caller bounds what it reads: a gzip stream's size is known only once read."""
    with open_regular(path) as fh:
        if fh.read(2) == GZIP_MAGIC:
            fh.seek(0)
            with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                yield gz
        else:
            fh.seek(0)
            yield fh
