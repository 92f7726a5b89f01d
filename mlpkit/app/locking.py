"""Run-folder locks: one writer per run, and a way to see that a run is being written.

The lock is the operating system's (``flock`` on POSIX, ``LockFileEx`` on Windows, through
filelock's ``lock_descriptor``) on ``<run>/.lock``, opened without following a symbolic link; it is
released when closed or when the process ends, however it ends. The file holds the owner's pid.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from mlpkit.errors import OutputError
from mlpkit.reader import NotARegularFile, open_regular
from mlpkit.writer import open_lock

LOCK_NAME = ".lock"


class RunLock:
    """An exclusive lock on a run folder for the life of the process that writes it."""

    def __init__(self, path: Path) -> None:
        lock = path / LOCK_NAME
        try:
            fd = open_lock(lock)
        except OSError as e:
            if e.errno in (errno.EEXIST, errno.ELOOP, errno.EISDIR):  # a link, a FIFO, a folder in its place
                raise OutputError(f"{lock}: is not a regular file; remove it (mlpkit keeps its lock there)") from None
            raise OutputError(f"{lock}: cannot be created ({e.strerror or e})") from None
        import filelock  # here, not at import: where the OS has no lock call, only locking fails, not `mlpkit --help`

        try:
            locked = filelock.lock_descriptor(fd, blocking=False)  # False: another process holds it
        except OSError as e:
            os.close(fd)
            raise OutputError(f"{lock}: cannot be locked ({e.strerror or e})") from None
        if not locked:
            owner = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise OutputError(f"{path}: another mlpkit process (pid {owner[:12]}) is writing this run; wait for it "
                              "to finish or choose another --out") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd: int | None = fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
            self._fd = None


def is_locked(run: Path) -> bool:
    """Whether a process holds the run's lock, i.e. is training it now."""
    import filelock

    try:
        fh = open_regular(run / LOCK_NAME, follow_links=False)
    except (OSError, NotARegularFile):
        return False  # none, or not a lock mlpkit made: nobody holds it
    with fh:  # closing also releases a lock we just took
        try:
            return not filelock.lock_descriptor(fh.fileno(), blocking=False)
        except OSError:
            return True
