"""Run-folder locks: one writer per run, and a way to see that a run is being written.

The lock is the operating system's (``flock`` on POSIX, ``LockFileEx`` on Windows, through
filelock's ``lock_descriptor``) on ``<run>/.lock``, opened without following a symbolic link; it is
released when closed or when the process ends, however it ends. The file holds the owner's pid.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mlpkit.errors import OutputError

LOCK_NAME = ".lock"
# O_NOFOLLOW: a link planted as .lock is refused, never followed (POSIX; Windows has no such flag).
# O_NONBLOCK: a FIFO planted as .lock never blocks the open (POSIX; its fstat then shows it is not a file).
_OPEN = os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0) | \
    getattr(os, "O_NONBLOCK", 0)


class RunLock:
    """An exclusive lock on a run folder for the life of the process that writes it."""

    def __init__(self, path: Path) -> None:
        lock = path / LOCK_NAME
        try:
            fd = os.open(lock, os.O_RDWR | _OPEN, 0o644)
        except OSError as e:
            raise OutputError(f"{lock}: cannot be created ({e.strerror or e})") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OutputError(f"{lock}: is not a regular file; remove it (mlpkit keeps its lock there)")
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
        fd = os.open(run / LOCK_NAME, os.O_RDONLY | _OPEN & ~os.O_CREAT)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False  # not a lock mlpkit made: nobody holds it
        return not filelock.lock_descriptor(fd, blocking=False)
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases a lock we just took
