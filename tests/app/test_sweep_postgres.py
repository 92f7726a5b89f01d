"""mlpkit sweep on a real PostgreSQL server, started by the test (Debian's postgresql package; no mock): two
worker processes, as two machines would run them, join one study through --storage."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ..conftest import CONFIGS, ROOT

pytestmark = pytest.mark.slow


def _missing(why: str) -> None:
    if os.environ.get("MLPKIT_REQUIRE_POSTGRES"):  # .ci/run installs the server: there a skip is a failure
        pytest.fail(why)
    pytest.skip(why)


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        _missing("the PostgreSQL test needs the server (Debian: apt install postgresql)")
    return found[-1].parent


@pytest.fixture
def postgres(tmp_path):
    """A PostgreSQL server of its own on a free port of 127.0.0.1, stopped afterwards. Run as the postgres
    user where the test runs as root (the server refuses root)."""
    pytest.importorskip("optuna")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _missing("the PostgreSQL test needs psycopg (pip install 'psycopg[binary]')")
    bindir = _pg_bin()
    as_user: list[str] = []
    # the server's folder, outside pytest's (which only its owner may enter: the postgres user could not)
    home = Path(tempfile.mkdtemp(prefix="mlpkit-pg-"))
    data = home / "pgdata"
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            _missing("running as root, the PostgreSQL test needs runuser to start the server as postgres")
        as_user = [runuser, "-u", "postgres", "--"]
        home.chmod(0o755)
        data.mkdir()
        shutil.chown(data, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    # -w: pg_ctl returns when the server accepts connections (the event), not after a fixed time
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"), "-o",
                    f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"], check=True, capture_output=True)
    try:
        subprocess.run([*as_user, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                        "mlpkit"], check=True, capture_output=True)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/mlpkit"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_two_workers_share_one_study_on_postgresql(postgres, tmp_path):
    import optuna

    base = tmp_path / "base.yaml"
    base.write_text((CONFIGS / "quickstart.yaml").read_text().replace("epochs: 40", "epochs: 2"))
    sweep = tmp_path / "pg.yaml"
    sweep.write_text("base: base.yaml\ntrials: 6\nsampler: random\npruner: none\nspace:\n"
                     "  train.lr: {low: 0.02, high: 0.5, log: true}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", "from mlpkit.app.cli import run; run()", "sweep", str(sweep), "--storage", postgres]
    # two processes, each in its own folder: as two machines with one database between them
    procs = []
    for k in range(2):
        where = tmp_path / f"machine-{k}"
        where.mkdir()
        procs.append(subprocess.Popen(cmd, cwd=where, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    for proc in procs:
        _, err = proc.communicate()
        assert proc.returncode == 0, err
    study = optuna.load_study(study_name="pg", storage=postgres)
    complete = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    assert len(complete) >= 6 and len({t.number for t in complete}) == len(complete)
    made = [d for k in range(2) for d in (tmp_path / f"machine-{k}" / "sweeps" / "pg").glob("trial-*")]
    assert len(made) == len(study.get_trials())  # every trial trained once, on one of the two
    r = subprocess.run([*cmd[:4], "show", "pg", "--storage", postgres, "--json"], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0 and len(json.loads(r.stdout)["trials"]) == len(study.get_trials())
