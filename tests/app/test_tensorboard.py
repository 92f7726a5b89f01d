"""train.tensorboard: scalars TensorBoard's own reader reads back, equal to metrics.jsonl."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mlpkit.app.cli import app

from ..conftest import CONFIGS

runner = CliRunner()


def _scalars(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_reads_the_runs_scalars_back(tmp_path):
    pytest.importorskip("tensorboard")
    run = tmp_path / "tb"
    r = runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "3", "--set", "train.tensorboard=true",
                            "--out", str(run), "-q"])
    assert r.exit_code == 0, r.output
    scalars = _scalars(run)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [s for s, _ in scalars["loss/train_as_trained"]] == [1, 2, 3]
    for tag, key in (("loss/train_as_trained", "train_loss"), ("accuracy/validation", "val_acc"),
                     ("loss/validation", "val_loss"), ("learning_rate", "lr")):
        assert [v for _, v in scalars[tag]] == pytest.approx([m[key] for m in rows], rel=1e-6), tag
    assert [v for _, v in scalars["grad_norm/layers.0.W"]] == pytest.approx(
        [m["grad_norms"]["layers.0.W"] for m in rows], rel=1e-6)
    # resumed to 5 epochs: the file is rewritten whole, so no epoch appears twice
    r = runner.invoke(app, ["train", "--resume", str(run), "--epochs", "5", "-q"])
    assert r.exit_code == 0, r.output
    assert [s for s, _ in _scalars(run)["loss/train_as_trained"]] == [1, 2, 3, 4, 5]


def test_without_tensorboard_installed_the_config_is_one_line(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name == "tensorboard" or name.startswith("tensorboard."):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    r = runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--set", "train.tensorboard=true",
                            "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and r.output.strip() == (
        "error: train.tensorboard: needs the tensorboard package, which is not installed; install it with pip "
        "install 'mlpkit[tensorboard]' (or pip install tensorboard).")
    assert not (tmp_path / "x").exists()
