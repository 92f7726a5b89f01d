"""The one way in (mlpkit.reader) and the one way out (mlpkit.writer), as properties over contents and over what
may stand at a path: a regular file, nothing, a link (to a file, to nowhere), a folder, a FIFO."""

from __future__ import annotations

import contextlib
import gzip
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlpkit.errors import DataError
from mlpkit.reader import NotARegularFile, open_regular, open_stream, read_bytes, read_text
from mlpkit.writer import atomic_write, check_destination, make_subfolder, remove_file, replacing

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs and O_NOFOLLOW are POSIX")

KINDS = ["missing", "file", "link-to-file", "dangling-link", "folder", "fifo", "link-to-fifo"]
PROPS = settings(max_examples=60, deadline=None)


@contextlib.contextmanager
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def plant(root: Path, kind: str, old: bytes = b"old") -> Path:
    """``root/x`` made into ``kind``; the target of a link is ``root/target`` holding ``old``."""
    p, target = root / "x", root / "target"
    target.write_bytes(old)
    if kind == "file":
        p.write_bytes(old)
    elif kind == "link-to-file":
        p.symlink_to(target)
    elif kind == "dangling-link":
        p.symlink_to(root / "nowhere")
    elif kind == "folder":
        p.mkdir()
    elif kind == "fifo":
        os.mkfifo(p)
    elif kind == "link-to-fifo":
        os.mkfifo(root / "pipe")
        p.symlink_to(root / "pipe")
    return p


def snapshot(root: Path) -> dict[str, object]:
    """What every entry of ``root`` is: a link's target, a file's bytes, or its kind."""
    out: dict[str, object] = {}
    for q in sorted(root.iterdir()):
        out[q.name] = ("link", os.readlink(q)) if q.is_symlink() else q.read_bytes() if q.is_file() else \
            "folder" if q.is_dir() else "other"
    return out


def finished(fn, *args, **kwargs):
    """Call ``fn`` in a thread; (returned, raised). A call that blocks (a FIFO opened for reading with no writer
    waits for ever) is reported as blocked rather than hanging the suite."""
    box: dict[str, object] = {}

    def go():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as e:  # handed back to the test
            box["error"] = e

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(120)  # returns the moment the call does; only a call that blocks waits this long
    assert not t.is_alive(), f"{fn.__name__} blocked"
    return box.get("value"), box.get("error")


# --------------------------------------------------------------------------- the reader


@PROPS
@given(data=st.binary(max_size=3000), limit=st.integers(0, 3500), kind=st.sampled_from(KINDS),
       follow=st.booleans())
def test_read_bytes_gives_a_regular_files_bytes_within_the_bound_and_refuses_everything_else(data, limit, kind, follow):
    with folder() as root:
        p = plant(root, kind, data)
        value, error = finished(read_bytes, p, limit, follow_links=follow)
        regular = kind == "file" or (kind == "link-to-file" and follow)
        if kind == "missing" or (kind == "dangling-link" and follow):
            assert isinstance(error, FileNotFoundError)
        elif not regular:
            assert isinstance(error, NotARegularFile) and str(error).startswith(f"{p}: is ")
            assert error.kind == {"folder": "a folder", "fifo": "a FIFO"}.get(kind, "a symbolic link" if not follow
                                                                           else "a FIFO")
        elif len(data) > limit:
            assert isinstance(error, DataError) and str(error) == f"{p}: is larger than {limit:,} bytes"
        else:
            assert error is None and value == data


@PROPS
@given(text=st.text(max_size=300), junk=st.binary(min_size=1, max_size=8))
def test_read_text_gives_utf8_text_and_names_the_first_bad_byte(text, junk):
    with folder() as root:
        good, bad = root / "good.txt", root / "bad.txt"
        good.write_bytes(text.encode("utf-8"))
        assert read_text(good, 10_000) == text
        raw = text.encode("utf-8") + junk
        bad.write_bytes(raw)
        try:
            expected = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            with pytest.raises(DataError) as info:
                read_text(bad, 10_000)
            assert str(info.value) == f"{bad}: is not UTF-8 text (byte {e.start})"
        else:
            assert read_text(bad, 10_000) == expected


@PROPS
@given(data=st.binary(max_size=5000), compress=st.booleans())
def test_open_stream_gives_the_contents_gzip_or_not(data, compress):
    if not compress and data[:2] == b"\x1f\x8b":
        data = b"x" + data  # a raw file that starts like gzip is gzip, by definition
    with folder() as root:
        p = root / "f"
        p.write_bytes(gzip.compress(data) if compress else data)
        with open_stream(p) as fh:
            assert fh.read() == data


def test_open_regular_refuses_a_device_and_never_blocks_on_a_fifo(tmp_path):
    for dev in ("/dev/zero", "/dev/null"):
        if os.path.exists(dev):
            _, error = finished(open_regular, dev)
            assert isinstance(error, NotARegularFile) and error.kind == "a device"
    os.mkfifo(tmp_path / "pipe")
    _, error = finished(read_bytes, tmp_path / "pipe", 10)
    assert isinstance(error, NotARegularFile) and str(error) == f"{tmp_path / 'pipe'}: is a FIFO, not a file mlpkit can read"


# --------------------------------------------------------------------------- the writer


@PROPS
@given(data=st.binary(max_size=2000), kind=st.sampled_from(KINDS))
def test_atomic_write_writes_whole_onto_a_new_name_or_a_file_and_changes_nothing_else(data, kind):
    with folder() as root:
        p = plant(root, kind)
        before = snapshot(root)
        _, error = finished(atomic_write, p, data)
        if kind in ("missing", "file"):
            assert error is None and p.read_bytes() == data
            assert snapshot(root) == {**before, "x": data}  # no temporary file left, nothing else touched
        else:
            assert isinstance(error, OSError) and "choose a new name" in str(error) and str(p) in str(error)
            assert snapshot(root) == before  # the link, its target, the folder, the FIFO: all as they were


@PROPS
@given(data=st.binary(max_size=500), alias=st.sampled_from(["same", "hardlink", "symlink", "inside", "other"]))
def test_the_writer_never_writes_onto_an_input(data, alias):
    with folder() as root:
        src = root / "data" / "in.png"
        src.parent.mkdir()
        src.write_bytes(b"input")
        inputs = [src]
        if alias == "same":
            dest = src
        elif alias == "hardlink":
            dest = root / "hard.png"
            os.link(src, dest)
        elif alias == "symlink":  # a path through a linked folder: the same file under another name
            (root / "alias").symlink_to(root / "data")
            dest = root / "alias" / "in.png"
        elif alias == "inside":  # a new name inside a folder the command reads
            dest, inputs = root / "data" / "new.png", [root / "data"]
        else:
            dest = root / "out.png"
        before = snapshot(src.parent)
        _, error = finished(atomic_write, dest, data, inputs)
        if alias == "other":
            assert error is None and dest.read_bytes() == data
        else:
            assert isinstance(error, OSError) and "which this command reads" in str(error)
            assert snapshot(src.parent) == before and src.read_bytes() == b"input"


@PROPS
@given(old=st.binary(max_size=200), new=st.binary(max_size=200))
def test_a_failed_write_leaves_the_old_file_whole(old, new):
    with folder() as root:
        p = root / "f"
        p.write_bytes(old)
        with pytest.raises(KeyboardInterrupt), replacing(p) as fh:
            fh.write(new)
            raise KeyboardInterrupt
        assert snapshot(root) == {"f": old}


@PROPS
@given(kind=st.sampled_from(KINDS))
def test_remove_file_removes_a_file_or_a_link_itself_and_nothing_else(kind):
    with folder() as root:
        p = plant(root, kind, b"target")
        before = snapshot(root)
        removed, error = finished(remove_file, p)
        if kind == "missing":
            assert error is None and removed is False and snapshot(root) == before
        elif kind in ("folder", "fifo"):
            assert isinstance(error, OSError) and "left in place" in str(error) and snapshot(root) == before
        else:
            assert error is None and removed is True and not os.path.lexists(p)
            assert snapshot(root) == {k: v for k, v in before.items() if k != "x"}  # a link's target is kept


@PROPS
@given(kind=st.sampled_from(KINDS))
def test_make_subfolder_makes_a_folder_or_keeps_one_and_refuses_anything_else(kind):
    with folder() as root:
        p = plant(root, kind)
        before = snapshot(root)
        _, error = finished(make_subfolder, p)
        if kind in ("missing", "folder"):
            assert error is None and p.is_dir() and not p.is_symlink()
        else:
            assert isinstance(error, OSError) and snapshot(root) == before


def test_check_destination_names_what_is_in_the_way(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "l").symlink_to(tmp_path / "d")
    with pytest.raises(OSError, match=r"it exists and is a folder; choose a new name"):
        check_destination(tmp_path / "d")
    with pytest.raises(OSError, match=r"it exists and is a symbolic link; choose a new name"):
        check_destination(tmp_path / "l")
    check_destination(tmp_path / "new")  # a new name: fine
