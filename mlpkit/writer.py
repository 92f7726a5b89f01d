"""One way out: every file mlpkit writes, creates or removes goes through here.

- Files appear whole or not at all: written beside their destination, flushed, renamed (``atomic_write``,
  ``replacing``). Only onto a new name or a regular file: a link, a device, a FIFO or a folder in the way is
  refused (a rename would replace a device node or a link itself), and so is a file the same command reads, or
  any file inside a folder it reads (``inputs``).
- ``remove_file`` removes a regular file or a link itself, never a link's target, a folder or a device.
- ``make_folder``, ``probe_writable`` and ``open_lock`` create folders, prove a folder writable and open a
  lock file, never through a link.

The reader is ``mlpkit.reader``; ``tests/test_structure.py`` finds no other place in mlpkit that opens,
writes or removes a file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO


def check_destination(path: Path, inputs: Iterable[str | Path] = ()) -> None:
    """Refuse a destination that is not a new name or a regular file, that is one of ``inputs``, or that lies
    inside a folder among ``inputs`` (a new name there would add a file to what the command reads)."""
    inputs = list(inputs)
    for source in inputs:
        if os.path.isdir(source) and _inside(path, Path(source)):
            raise OSError(errno.EEXIST, f"it is inside {source}, which this command reads", str(path))
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


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` (existing or not) lies in ``folder`` or below it, links resolved."""
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a link loop: not provably inside
        return False


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


def remove_file(path: str | Path) -> bool:
    """Remove a regular file, or a link itself (never its target). False when nothing is there; OSError for a
    folder, a device, a FIFO or a socket, which mlpkit never wrote and never removes."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        raise OSError(errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL,
                      "it is not a file mlpkit wrote; it is left in place", str(path))
    try:
        os.unlink(path)
    except FileNotFoundError:  # another process removed it first
        return False
    return True


def make_folder(path: str | Path) -> Path:
    """Create a folder and its parents (an existing folder, or a link to one the user made, is kept)."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    return p


def make_subfolder(path: str | Path) -> Path:
    """Create one folder inside an existing one, refusing a link or a file in its place: what mlpkit writes
    inside a run folder stays inside it."""
    p = Path(path)
    try:
        p.mkdir()
    except FileExistsError:
        st = os.lstat(p)
        if not stat.S_ISDIR(st.st_mode):
            what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a folder"
            raise OSError(errno.EEXIST, f"it is {what}", str(p)) from None
    return p


def probe_writable(folder: str | Path) -> None:
    """Prove ``folder`` writable: a file of a random name, created exclusively (so a planted link is never
    followed) and removed at once. OSError when it cannot be."""
    with tempfile.TemporaryFile(dir=folder, prefix=".write-test-"):
        pass


# O_NOFOLLOW: a link planted as the lock is refused, never followed (POSIX; Windows has no such flag).
# O_NONBLOCK: a FIFO planted as the lock never blocks the open (its fstat then shows it is not a file).
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | \
    getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)


def open_lock(path: str | Path) -> int:
    """A descriptor of a lock file, created if missing (mode 0644); OSError when ``path`` is a link or not a
    regular file. The caller closes it (closing releases any lock taken on it)."""
    fd = os.open(path, _LOCK_FLAGS, 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EEXIST, "it is not a regular file", str(path))
    return fd


def silence_stdout() -> None:
    """Point standard output at the null device: after a broken pipe (``mlpkit ... | head``) nothing more can be
    written, and the interpreter's final flush would fail with a second BrokenPipeError."""
    fd = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(fd, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (an embedding host): nothing to silence
        pass
    finally:
        os.close(fd)


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
