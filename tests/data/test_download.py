"""Downloads against a real HTTP server on 127.0.0.1 serving small generated IDX files."""

from __future__ import annotations

import http.server
import json
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlpkit.app.cli import app
from mlpkit.data.load import load_dataset
from mlpkit.errors import DataError

from ..idx_files import NAMES, register, write_idx_dataset

runner = CliRunner()


class Server:
    """Serves ``files`` under each mirror prefix; ``behaviour[(prefix, name)]`` can be
    'ok', '404', 'corrupt' (other bytes, same length) or 'cut' (half the bytes, then hang up)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.behaviour: dict[tuple[str, str], str] = {}
        self.log: list[tuple[str, int]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                prefix, _, name = self.path.strip("/").partition("/")
                mode = outer.behaviour.get((prefix, name), "ok")
                body = outer.files.get(name)
                if body is None or mode == "404":
                    outer.log.append((self.path, 404))
                    self.send_error(404)
                    return
                outer.log.append((self.path, 200))
                if mode == "silent":
                    time.sleep(3)
                    return
                if mode == "slowheaders":  # a proxy that answers its status line a byte at a time
                    try:
                        for b in b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx":
                            self.wfile.write(bytes([b]))
                            self.wfile.flush()
                            time.sleep(0.3)  # 40 bytes: 12 s in all, each recv well inside the stall window
                    except OSError:
                        pass
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "silent":  # a proxy that accepted the connection and never answers
                    time.sleep(3)
                    return
                if mode == "trickle":  # one byte every 50 ms, for as long as the client listens
                    try:
                        for b in body:
                            self.wfile.write(bytes([b]))
                            self.wfile.flush()
                            time.sleep(0.05)
                    except OSError:
                        pass
                    return
                if mode == "corrupt":
                    self.wfile.write(bytes(b ^ 0xFF for b in body[:64]) + body[64:])
                elif mode == "cut":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def mirror(self, prefix: str) -> str:
        return f"{self.url}/{prefix}/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A generated dataset 'tiny' registered with two mirrors on a local server, and an empty cache."""
    src = tmp_path / "source"
    arrays = write_idx_dataset(src)
    server = Server({f"{n}.gz": (src / f"{n}.gz").read_bytes() for n in NAMES})
    register(monkeypatch, src, mirrors=(server.mirror("a"), server.mirror("b")))
    cache = tmp_path / "cache"
    monkeypatch.setenv("MLPKIT_DATA_DIR", str(cache))
    yield server, cache / "tiny", arrays
    server.close()


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_clean_download_into_empty_cache(served):
    server, folder, arrays = served
    d = load_dataset("tiny")
    assert _files(folder) == sorted(f"{n}.gz" for n in NAMES)
    assert d.x_train.shape == (60, 784) and (d.y_test == arrays["t10k-labels-idx1-ubyte"]).all()
    assert all(path.startswith("/a/") for path, _ in server.log) and len(server.log) == 4
    server.log.clear()
    load_dataset("tiny", offline=True)  # from the cache, verified, nothing fetched
    assert server.log == []


def test_checksum_mismatch_rejected_nothing_left(served):
    server, folder, _ = served
    for n in NAMES:
        server.behaviour[("a", f"{n}.gz")] = "corrupt"
        server.behaviour[("b", f"{n}.gz")] = "corrupt"
    with pytest.raises(DataError) as e:
        load_dataset("tiny")
    msg = str(e.value)
    assert "SHA-256 mismatch" in msg and server.mirror("a") in msg and server.mirror("b") in msg
    assert _files(folder) == []  # no file, and no temporary left behind


def test_404_on_first_mirror_uses_second(served):
    server, folder, _ = served
    for n in NAMES:
        server.behaviour[("a", f"{n}.gz")] = "404"
    load_dataset("tiny")
    assert _files(folder) == sorted(f"{n}.gz" for n in NAMES)
    assert [code for path, code in server.log if path.startswith("/a/")] == [404] * 4
    assert [code for path, code in server.log if path.startswith("/b/")] == [200] * 4


def test_connection_cut_mid_file_then_retry(served):
    server, folder, _ = served
    name = "train-images-idx3-ubyte.gz"
    server.behaviour[("a", name)] = "cut"
    server.behaviour[("b", name)] = "cut"
    with pytest.raises(DataError) as e:
        load_dataset("tiny")
    assert "connection closed after" in str(e.value) or "bytes, expected" in str(e.value)
    assert name not in _files(folder)
    assert not [p for p in _files(folder) if p.endswith(".part")]  # nothing half-written
    server.behaviour.clear()
    assert load_dataset("tiny").x_train.shape == (60, 784)  # a later try succeeds
    assert _files(folder) == sorted(f"{n}.gz" for n in NAMES)


def test_offline_with_empty_cache_exit_2(served, tmp_path):
    server, folder, _ = served
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {dataset: tiny}\nmodel: {layers: [{linear: 10}]}\ntrain: {epochs: 1}\n")
    r = runner.invoke(app, ["train", str(cfg), "--offline", "--out", str(tmp_path / "run")])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "dataset tiny: not found and --offline forbids downloading" in r.output
    assert "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz" in r.output and str(folder) in r.output
    assert server.log == []


def test_train_downloads_when_needed(served, tmp_path):
    server, _folder, _ = served
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {dataset: tiny}\nmodel: {layers: [{linear: 10}]}\ntrain: {epochs: 1}\n")
    r = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "run"), "-q", "--json"])
    assert r.exit_code == 0, r.output
    assert len(server.log) == 4


def test_data_download_and_list_commands(served):
    _server, folder, _ = served
    r = runner.invoke(app, ["data", "download", "tiny"])
    assert r.exit_code == 0 and f"tiny: 4 files present and verified in {folder}" in " ".join(r.output.split())
    r = runner.invoke(app, ["data", "download", "tiny", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout) == {"dataset": "tiny", "folder": str(folder),
                                                         "files": [f"{n}.gz" for n in NAMES]}
    r = runner.invoke(app, ["data", "list", "--json"])
    rows = {row["name"]: row for row in __import__("json").loads(r.stdout)}
    assert rows["tiny"]["status"] == "present" and rows["tiny"]["folder"] == str(folder)
    assert rows["mnist"]["status"] == "missing" and rows["digits"]["status"] == "embedded"


def test_download_unknown_dataset(served):
    r = runner.invoke(app, ["data", "download", "digits"])
    assert r.exit_code == 2 and "'digits' is not a downloadable dataset" in r.output


def test_unwritable_cache(served, tmp_path, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    monkeypatch.setenv("MLPKIT_DATA_DIR", str(blocker))
    with pytest.raises(DataError, match="the data folder cannot be written"):
        load_dataset("tiny")


def test_class_names_in_evaluate(tmp_path, monkeypatch):
    from mlpkit.data.registry import REGISTRY

    write_idx_dataset(tmp_path / "tiny")
    register(monkeypatch, tmp_path / "tiny", class_names=REGISTRY["fashion-mnist"].class_names)
    monkeypatch.setenv("MLPKIT_DATA_DIR", str(tmp_path))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {dataset: tiny}\nmodel: {layers: [{linear: 10}]}\ntrain: {epochs: 1}\n")
    assert runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "run"), "-q"]).exit_code == 0
    r = runner.invoke(app, ["evaluate", str(tmp_path / "run")])
    assert r.exit_code == 0 and "9 Ankle boot" in r.output and "0 T-shirt/top" in r.output


@pytest.mark.parametrize("mode,env,expect", [
    ("trickle", {"MLPKIT_DOWNLOAD_STALL": "0.5"}, "stalled: "),
    ("silent", {"MLPKIT_DOWNLOAD_STALL": "0.5"}, "timed out"),
    ("trickle", {"MLPKIT_DOWNLOAD_DEADLINE": "0.6"}, "deadline (MLPKIT_DOWNLOAD_DEADLINE)"),
    # issue 23, item 18: headers a byte every 0.3 s kept every recv inside the stall window: 12 s, not 0.6
    ("slowheaders", {"MLPKIT_DOWNLOAD_DEADLINE": "0.6"}, "deadline (MLPKIT_DOWNLOAD_DEADLINE)"),
])
@pytest.mark.slow
def test_stalled_or_slow_mirrors_give_up_in_time(served, monkeypatch, mode, env, expect):
    """A per-read timeout is not enough: a byte every 50 ms never trips it. The stall rule (too few bytes
    in a window) and the overall deadline do; the command ends with one line and exit 2."""
    server, folder, _ = served
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for prefix in ("a", "b"):
        server.behaviour[(prefix, "train-images-idx3-ubyte.gz")] = mode
    t0 = time.monotonic()
    r = runner.invoke(app, ["data", "download", "tiny", "-q"])
    elapsed = time.monotonic() - t0
    assert r.exit_code == 2 and "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
    assert expect in r.output.replace("$", ""), r.output
    # Well under the defaults' stall window (30 s) and deadline, and under the 12 s the slow headers take: the
    # limits set above were what ended it, however busy the machine (they ended it in about 0.6 s here).
    assert elapsed < 8, elapsed
    assert not [p for p in _files(folder) if p.endswith(".part")]


def test_download_limits_must_be_positive_seconds(served, monkeypatch):
    monkeypatch.setenv("MLPKIT_DOWNLOAD_STALL", "soon")
    r = runner.invoke(app, ["data", "download", "tiny", "-q"])
    assert r.exit_code == 2 and "$MLPKIT_DOWNLOAD_STALL must be a number of seconds > 0, got 'soon'" in r.output


def test_no_network_is_one_short_line(tmp_path, monkeypatch):
    """Issue 25: without a network every mirror fails alike; the message said so once per mirror (700
    characters). Now one reason, then what to do."""
    import socket

    ports = []
    for _ in range(3):  # ports that were free a moment ago: nothing listens, the connection is refused
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    src = tmp_path / "source"
    write_idx_dataset(src)
    register(monkeypatch, src, mirrors=tuple(f"http://127.0.0.1:{p}/" for p in ports))
    monkeypatch.setenv("MLPKIT_DATA_DIR", str(tmp_path / "cache"))
    r = runner.invoke(app, ["data", "info", "tiny"])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1
    line = r.output.strip()
    assert line.startswith("error: dataset tiny: download failed (all 3 mirrors unreachable (Connection refused)); "
                           "point --data-dir at a folder holding train-images-idx3-ubyte.gz")
    assert len(line) < 360 and line.count("http") == 1
