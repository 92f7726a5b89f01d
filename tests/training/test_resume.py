"""Never lose a run: checkpoints, exact resume after SIGKILL, clean SIGINT/SIGTERM, divergence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mlpkit.app import api
from mlpkit.app.cli import app
from mlpkit.app.runfiles import read_checkpoint
from mlpkit.config.validate import config_from_dict
from mlpkit.data.load import load_digits
from mlpkit.training.trainer import Trainer, fit

from ..conftest import ROOT
from ..resume_helpers import stop_run_at

runner = CliRunner()

CFG = {
    "seed": 5,
    "data": {"dataset": "digits", "validation": 200, "train_eval_samples": 300},
    "model": {"max_norm": 2.0,
              "layers": [{"dropout": 0.2}, {"linear": 48}, "sigmoid", {"dropout": 0.3}, {"linear": 32}, "relu",
                         {"dropout": 0.1}, {"linear": 10}]},
    "train": {"epochs": 3, "batch_size": 32, "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4,
              "lr_schedule": "exponential", "lr_decay": 0.8, "momentum_start": 0.5, "momentum_ramp_epochs": 2,
              "grad_norm_samples": 7},
}


def _params_bytes(model) -> dict[str, bytes]:
    return {k: v.tobytes() for k, v in model.named_params().items()}


@pytest.fixture(scope="module")
def reference():
    t = Trainer(config_from_dict(CFG), load_digits())
    fit(t)
    return t


@pytest.mark.parametrize("stop_at", [(1, 1), (1, 20), (2, 0), (2, 38), (3, 7)])
def test_stop_and_resume_in_process_is_bit_identical(reference, tmp_path, stop_at):
    """Stop at (epoch, step) via a checkpoint, restore into a fresh process state, finish."""
    cfg = config_from_dict(CFG)
    t = Trainer(cfg, load_digits())
    stop_run_at(t, tmp_path / "run", stop_at)
    del t
    resumed, w2, plan = api.resume(tmp_path / "run")
    w2.close()
    assert (resumed.epoch + 1, resumed.epoch_step) == stop_at and plan.warnings == []
    fit(resumed)
    assert _params_bytes(resumed.model) == _params_bytes(reference.model)
    assert resumed.history == reference.history
    assert resumed.optimizer.state_dict().keys() == reference.optimizer.state_dict().keys()


# --------------------------------------------------------------------------- real processes


def _write_cfg(tmp_path: Path) -> Path:
    p = tmp_path / "cfg.yaml"
    cfg = json.loads(json.dumps(CFG))
    cfg["model"]["layers"][1] = {"linear": 384}
    cfg["model"]["layers"][4] = {"linear": 384}
    cfg["train"].update(epochs=4, batch_size=8)
    p.write_text(json.dumps(cfg))  # JSON is YAML
    return p


def _mlpkit(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "mlpkit", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def _position(run: Path) -> tuple[int, int]:
    try:
        state = read_checkpoint(run).state
        return state["epoch"], state["step"]
    except Exception:
        return (0, 0)


def _wait_until(run: Path, target: tuple[int, int], proc: subprocess.Popen) -> None:
    """Wait for the event itself: a checkpoint at ``target`` or later. No wall-clock budget (a loaded machine is
    only slower); the wait ends in failure if the run ends first, which a finite run always does."""
    while _position(run) < target:
        if proc.poll() is not None:
            raise AssertionError(f"training ended before a checkpoint at {target}: {proc.stderr.read()}")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    cfg = _write_cfg(tmp)
    p = _mlpkit("train", str(cfg), "--out", str(tmp / "run"), "-q", "--json")
    _out, err = p.communicate()
    assert p.returncode == 0, err
    return cfg, tmp / "run"


def _same_result(a: Path, b: Path) -> None:
    za, zb = np.load(a / "model.npz"), np.load(b / "model.npz")
    names = [k for k in za.files if k.startswith("layers.")]
    assert names and all(za[k].tobytes() == zb[k].tobytes() for k in names)
    assert (a / "model.npz").read_bytes() == (b / "model.npz").read_bytes()
    assert (a / "metrics.jsonl").read_bytes() == (b / "metrics.jsonl").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("target", [(0, 15), (1, 70), (2, 131)])
def test_sigkill_then_resume_is_bit_identical(uninterrupted, tmp_path, target):
    cfg, ref = uninterrupted
    run = tmp_path / "run"
    p = _mlpkit("train", str(cfg), "--out", str(run), "-q", "--checkpoint-every", "5")
    _wait_until(run, target, p)
    time.sleep(0.003 * (target[1] % 7))  # land between checkpoints, not always just after one
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL
    assert not (run / "model.npz").exists(), "the run finished before it was killed"
    r = _mlpkit("train", "--resume", str(run), "-q")
    _out, err = r.communicate()
    assert r.returncode == 0, err
    _same_result(ref, run)


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_cleanly_and_resumes(uninterrupted, tmp_path, sig, code):
    cfg, ref = uninterrupted
    run = tmp_path / "run"
    p = _mlpkit("train", str(cfg), "--out", str(run), "-q", "--checkpoint-every", "50")
    _wait_until(run, (1, 50), p)
    p.send_signal(sig)
    _, err = p.communicate()
    assert p.returncode == code, err
    assert "Traceback" not in err
    assert f"checkpoint saved to {run / 'checkpoints' / 'last.npz'}; resume with: mlpkit train --resume {run}" in err
    epoch, step = _position(run)
    assert (epoch, step) >= (1, 50) and step > 0  # stopped mid-epoch, at the end of a step
    r = _mlpkit("train", "--resume", str(run), "-q")
    _out, err = r.communicate()
    assert r.returncode == 0, err
    _same_result(ref, run)


def test_divergence_keeps_last_good_checkpoint(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {dataset: digits}\nmodel: {layers: [{linear: 64}, {linear: 64}, {linear: 10}]}\n"
                   "train: {lr: 1.0e+6, epochs: 2}\n")
    r = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "run"), "--checkpoint-every", "1", "-q"])
    assert r.exit_code == 1
    assert "the loss exploded to" in r.output and "at epoch 1, step 2" in r.output and "smaller learning rate" in r.output
    assert f"the last good checkpoint is kept in {tmp_path / 'run' / 'checkpoints' / 'last.npz'}" in r.output
    ck = read_checkpoint(tmp_path / "run")
    assert (ck.state["epoch"], ck.state["step"]) == (0, 1)
    assert all(np.isfinite(a).all() for a in ck.arrays.values())


def test_resume_argument_errors(tmp_path):
    r = runner.invoke(app, ["train", str(ROOT / "configs" / "quickstart.yaml"), "--resume", str(tmp_path)])
    assert r.exit_code == 2 and "not both" in r.output
    r = runner.invoke(app, ["train"])
    assert r.exit_code == 2 and "missing CONFIG" in r.output
    r = runner.invoke(app, ["train", "--resume", str(tmp_path), "--set", "train.lr=1"])
    assert r.exit_code == 2 and "only train.epochs may change" in r.output
    r = runner.invoke(app, ["train", "--resume", str(tmp_path)])
    assert r.exit_code == 2 and "has no checkpoints/last.npz to resume from" in r.output


def test_resume_with_more_epochs_and_finished_run(tmp_path):
    q = str(ROOT / "configs" / "quickstart.yaml")
    assert runner.invoke(app, ["train", q, "--set", "train.epochs=2", "--out", str(tmp_path / "r"), "-q"]).exit_code == 0
    r = runner.invoke(app, ["train", "--resume", str(tmp_path / "r"), "--set", "train.epochs=3", "-q", "--json"])
    assert r.exit_code == 0 and len(json.loads(r.stdout)["history"]) == 3
    r = runner.invoke(app, ["train", "--resume", str(tmp_path / "r"), "-q", "--json"])  # already complete
    assert r.exit_code == 2 and "has finished all 3 of its epochs, so there is nothing to resume" in r.output
    (tmp_path / "r" / "model.npz").unlink()  # killed after its last checkpoint, before the final files
    r = runner.invoke(app, ["train", "--resume", str(tmp_path / "r"), "-q", "--json"])
    assert r.exit_code == 0 and len(json.loads(r.stdout)["history"]) == 3 and (tmp_path / "r" / "model.npz").is_file()


def test_files_get_the_usual_permissions(tmp_path):
    import stat

    from mlpkit.writer import atomic_write

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "f.txt", "x")
    finally:
        os.umask(old)
    from mlpkit import writer

    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o666 & ~writer._UMASK


@pytest.mark.parametrize("stream", ["shuffle_rng", "dropout_rng", "augment_rng"])
def test_another_seeds_generator_state_is_refused(tmp_path, stream):
    """Issue 23, item 16: a checkpoint whose shuffle or dropout state came from another seed resumed with exit 0
    and different weights; each state is derivable from the seed and the position, so it is checked."""
    from mlpkit.data.npz import npz_bytes, read_npz
    from mlpkit.errors import DataError

    q = str(ROOT / "configs" / "quickstart.yaml")
    aug = ["--set", "data.augment.affine.rotate=5"]
    runs = {}
    for seed in (0, 1):
        runs[seed] = tmp_path / f"s{seed}"
        r = runner.invoke(app, ["train", q, "--set", "train.epochs=2", "--set", f"seed={seed}", *aug, "--out",
                                str(runs[seed]), "-q"])
        assert r.exit_code == 0, r.output
    mine, theirs = (read_npz(runs[s] / "checkpoints" / "last.npz", DataError, "a checkpoint") for s in (0, 1))
    meta, other = (json.loads(str(a["__meta__"])) for a in (mine, theirs))
    assert meta["trainer"][stream] != other["trainer"][stream]
    meta["trainer"][stream] = other["trainer"][stream]
    mine["__meta__"] = np.array(json.dumps(meta))
    (runs[0] / "checkpoints" / "last.npz").write_bytes(npz_bytes(mine))
    r = runner.invoke(app, ["train", "--resume", str(runs[0]), "--set", "train.epochs=3", "-q"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert (f"trainer state '{stream}' is not the state seed 0 gives at the end of epoch 2; the checkpoint was "
            "edited or is another run's") in r.output, r.output
