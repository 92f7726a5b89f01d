"""Files that appear whole or not at all: written beside their destination, flushed, renamed.

Only onto a new name or a regular file: a link, a device, a FIFO or a folder in the way is refused (a rename
would replace a device node or a link itself), and so is a file the same command reads (``inputs``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO


def check_destination(path: Path, inputs: Iterable[str | Path] = ()) -> None:
    """Refuse a destination that is not a new name or a regular file, or that is one of ``inputs``."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode):
        what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "a folder" if stat.S_ISDIR(st.st_mode) else \
            "not a regular file"
        raise OSError(errno.EEXIST, f"it exists and is {what}; choose a new name", str(path))
    for source in inputs:
        try:
            same = os.path.samefile(path, source)
        except OSError:  # an input that is gone is not this file
            same = False
        if same:
            raise OSError(errno.EEXIST, f"it is {Path(source).name}, which this command reads", str(path))


@contextlib.contextmanager
def replacing(path: str | Path, suffix: str = ".tmp", inputs: Iterable[str | Path] = ()) -> Iterator[BinaryIO]:
    """Write to a temporary file in ``path``'s folder; on success it replaces ``path``.

    The data is flushed and fsynced before the rename, and the folder after it,
    so a crash at any instant leaves the old file or the new one, whole. On any
    error (including KeyboardInterrupt) the temporary file is removed.
    """
    path = Path(path)
    check_destination(path, inputs)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; the file gets the mode open() would give it
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write(path: str | Path, data: bytes | str, inputs: Iterable[str | Path] = ()) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, whole (see ``check_destination``)."""
    with replacing(path, inputs=inputs) as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
