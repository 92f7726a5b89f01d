"""Fetching dataset files: mirrors tried in order, SHA-256 verified, written atomically.

A download streams into a temporary file beside its destination, hashing as it
goes; only a file whose length and SHA-256 match is renamed into place. An
interrupted, truncated or corrupt download therefore never leaves a file in
the cache that looks complete.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlpkit.data.registry import RemoteFile
from mlpkit.errors import DataError
from mlpkit.reader import NotARegularFile, open_regular
from mlpkit.writer import make_folder, probe_writable, replacing

CHUNK = 1 << 16
# Two limits keep a download from hanging (both overridable by environment variables):
DEADLINE_ENV, DEADLINE_S = "MLPKIT_DOWNLOAD_DEADLINE", 900.0  # seconds for one file, every mirror together
STALL_ENV, STALL_S = "MLPKIT_DOWNLOAD_STALL", 30.0  # a connection that brings fewer than STALL_BYTES in this
STALL_BYTES = 16 << 10  # many seconds (or no answer at all) is stalled, and the next mirror is tried
USER_AGENT = "mlpkit (https://pypi.org/project/mlpkit)"

# (file name, bytes done, bytes total or None); called as a download proceeds.
Progress = Callable[[str, int, "int | None"], None]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open_regular(path) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Verdict:
    """What a local file is: usable or not, and whether its content is proven to be the published one."""

    ok: bool
    verified: bool
    problem: str | None = None  # why it is not usable, or why it is unverified


def _content_sha256(path: Path, limit: int) -> str:
    """SHA-256 of a gzip file's decompressed content (at most ``limit`` bytes are read)."""
    h, n = hashlib.sha256(), 0
    with open_regular(path) as raw, gzip.GzipFile(fileobj=raw, mode="rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            n += len(block)
            if n > limit:
                raise ValueError("decompresses to more than the dataset's files hold")
            h.update(block)
    return h.hexdigest()


def check_file(path: Path, f: RemoteFile, foreign: dict[str, str] | None = None) -> Verdict:
    """Is ``path`` the published file ``f`` (gzip as published, or uncompressed)?

    The content is what counts: a gzip file whose archive bytes differ from the
    published archive (another compressor, another header) is accepted when its
    decompressed content matches the published uncompressed checksum. Where no
    such checksum is published, a differing or uncompressed file is usable but
    *unverified*, unless its content is a known file of another dataset
    (``foreign``: SHA-256 -> what it is), which is refused.
    """
    foreign = foreign or {}
    raw = path.name == f.raw_name
    try:
        size = path.stat().st_size
        if not raw and size == f.size and sha256_of(path) == f.sha256:
            return Verdict(True, True)
        if raw and f.raw_sha256 is not None:
            if f.raw_size is not None and size != f.raw_size:
                return Verdict(False, False, f"has {size:,} bytes, expected {f.raw_size:,}")
            digest = sha256_of(path)
            if digest == f.raw_sha256:
                return Verdict(True, True)
            return Verdict(False, False, f"SHA-256 is {digest[:16]}…, expected {f.raw_sha256[:16]}…")
        content = sha256_of(path) if raw else _content_sha256(path, 1 << 31)
    except NotARegularFile as e:
        return Verdict(False, False, f"is {e.kind}, not a regular file")
    except OSError as e:
        return Verdict(False, False, f"cannot be read ({e.strerror or e})")
    except (EOFError, ValueError, zlib.error) as e:
        return Verdict(False, False, f"is not a valid gzip file ({type(e).__name__})")
    if content in foreign:
        return Verdict(False, False, f"holds {foreign[content]}, not this dataset's file")
    if f.raw_sha256 is not None:
        if content == f.raw_sha256:
            return Verdict(True, True)  # the published content, compressed differently
        return Verdict(False, False, f"its content's SHA-256 is {content[:16]}…, expected {f.raw_sha256[:16]}…")
    why = ("no checksum is published for the uncompressed file" if raw
           else "its archive differs from the published one and no checksum is published for its content")
    return Verdict(True, False, why)


def _limit(env: str, default: float) -> float:
    text = os.environ.get(env)
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise DataError(f"${env} must be a number of seconds > 0, got {text[:40]!r}")
    return value


def limits() -> tuple[float, float]:
    """(deadline, stall window) in seconds, from the environment or the defaults."""
    return _limit(DEADLINE_ENV, DEADLINE_S), _limit(STALL_ENV, STALL_S)


class _Clock:
    """The deadline of one file's download and the stall rule of one connection."""

    def __init__(self, deadline_s: float, stall_s: float) -> None:
        self.deadline_s, self.stall_s = deadline_s, stall_s
        self.end = time.monotonic() + deadline_s
        self.window_start, self.window_bytes = time.monotonic(), 0

    def timeout(self) -> float:
        """For one blocking socket operation: the stall window, within the deadline."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise DataError(f"took longer than the {self.deadline_s:g} s deadline (${DEADLINE_ENV})")
        return min(self.stall_s, left)

    def start_connection(self) -> None:
        self.window_start, self.window_bytes = time.monotonic(), 0

    def received(self, n: int) -> None:
        now = time.monotonic()
        self.window_bytes += n
        if now > self.end:
            raise DataError(f"took longer than the {self.deadline_s:g} s deadline (${DEADLINE_ENV})")
        if now - self.window_start >= self.stall_s:
            if self.window_bytes < STALL_BYTES:
                raise DataError(f"stalled: {self.window_bytes:,} bytes in {now - self.window_start:.0f} s, fewer than "
                                f"{STALL_BYTES:,} (${STALL_ENV} is {self.stall_s:g} s)")
            self.window_start, self.window_bytes = now, 0


def _open(req: urllib.request.Request, clock: _Clock) -> Any:
    """``urlopen``, bounded by the deadline as a whole. A server or proxy that sends its handshake, status line
    and headers a byte at a time keeps every recv inside the stall window, so no socket timeout fires: the
    request runs in a daemon thread and is abandoned when the deadline passes."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["response"] = urllib.request.urlopen(req, timeout=clock.timeout())
        except BaseException as e:  # handed to the caller's thread as it is
            result["error"] = e

    worker = threading.Thread(target=run, name="mlpkit-download", daemon=True)
    worker.start()
    worker.join(max(0.0, clock.end - time.monotonic()))
    if worker.is_alive():
        raise DataError(f"took longer than the {clock.deadline_s:g} s deadline (${DEADLINE_ENV}) before the "
                        "server answered")
    if "error" in result:
        raise result["error"]
    return result["response"]


def _fetch_one(url: str, dest: Path, f: RemoteFile, progress: Progress | None, clock: _Clock) -> None:
    """Download ``url`` to ``dest`` via a verified temporary file; raises on any failure."""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    clock.start_connection()
    # urlopen's timeout bounds every recv of this connection (the socket keeps it): a silent server fails within
    # the stall window; a trickle is caught by the stall rule and the deadline after each read.
    with replacing(dest, suffix=".part") as out, _open(req, clock) as resp:
        h = hashlib.sha256()
        done = 0
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else f.size
        while True:
            block = resp.read1(CHUNK)  # returns what one recv brought: a trickle cannot block us
            clock.received(len(block))
            if not block:
                break
            out.write(block)
            h.update(block)
            done += len(block)
            if done > f.size:
                raise DataError(f"sent more than the expected {f.size:,} bytes")
            if progress is not None:
                progress(f.name, done, total)
        if done != f.size:
            raise DataError(f"sent {done:,} bytes, expected {f.size:,}")
        if h.hexdigest() != f.sha256:
            raise DataError(f"SHA-256 mismatch (got {h.hexdigest()[:16]}…, expected {f.sha256[:16]}…)")


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code}"
    if isinstance(e, urllib.error.URLError):
        return f"unreachable ({getattr(e.reason, 'strerror', None) or e.reason})"
    if isinstance(e, http.client.IncompleteRead):
        return f"connection closed after {len(e.partial):,} bytes"
    if isinstance(e, DataError):
        return str(e)
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def fetch(f: RemoteFile, mirrors: tuple[str, ...], folder: Path, progress: Progress | None = None) -> Path:
    """Download one file into ``folder``, trying each mirror until one gives the right bytes.

    Raises:
        DataError: every mirror failed; the message lists each one's reason.
    """
    try:
        make_folder(folder)
        probe_writable(folder)
    except OSError as e:
        raise DataError(f"{folder}: the data folder cannot be written ({e.strerror or e}); choose another "
                        f"with --data-dir") from None
    dest = folder / f.name
    failures = []
    clock = _Clock(*limits())
    for base in mirrors:
        url = base.rstrip("/") + "/" + f.name
        try:
            _fetch_one(url, dest, f, progress, clock)
            return dest
        except (OSError, http.client.HTTPException, DataError, ValueError) as e:
            if time.monotonic() >= clock.end:
                failures.append(f"{url}: took longer than the {clock.deadline_s:g} s deadline (${DEADLINE_ENV})")
                break
            if isinstance(e, TimeoutError) or isinstance(getattr(e, "reason", None), TimeoutError):
                failures.append(f"{url}: no answer within {clock.stall_s:g} s, timed out (${STALL_ENV})")
            else:
                failures.append(f"{url}: {_reason(e)}")
    raise DataError(f"could not download {f.name}: " + _summary(failures))


def _summary(failures: list[str]) -> str:
    """The mirrors' failures in one short clause: one reason when they all failed alike (no network at all is
    the common case), else each host with its reason."""
    reasons = [r.split(": ", 2)[-1] for r in failures]
    if len(set(reasons)) == 1 and len(reasons) > 1 and reasons[0].startswith("unreachable"):
        return f"all {len(reasons)} mirrors {reasons[0]}"  # no network: one reason, not three URLs
    return "; ".join(failures)
