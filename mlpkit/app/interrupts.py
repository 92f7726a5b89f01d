"""Stop training cleanly on Ctrl-C (SIGINT) or SIGTERM.

The first signal only raises a flag: the trainer finishes its current step,
writes a checkpoint and stops. A second signal raises KeyboardInterrupt at
once; every file mlpkit writes is written atomically, so nothing already on
disk is corrupted.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class StopFlag:
    """Callable: the number of the first signal received, or 0."""

    def __init__(self) -> None:
        self.signum = 0

    def __call__(self) -> int:
        return self.signum


@contextlib.contextmanager
def graceful_stop() -> Iterator[StopFlag]:
    flag = StopFlag()

    def handler(signum: int, frame: object) -> None:
        if flag.signum:
            raise KeyboardInterrupt  # the second signal: stop now
        flag.signum = signum

    if threading.current_thread() is not threading.main_thread():
        yield flag  # signals can only be caught in the main thread
        return
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)
