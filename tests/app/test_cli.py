"""The command line through typer's CliRunner: exit codes, messages, --json, --help."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mlpkit import __version__
from mlpkit.app.cli import app

from ..conftest import CONFIGS, MNIST_DIR, needs_mnist

runner = CliRunner()
QUICK = str(CONFIGS / "quickstart.yaml")


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_train_then_evaluate(tmp_path):
    run = tmp_path / "run"
    r = invoke("train", QUICK, "--set", "train.epochs=3", "--out", run)
    assert r.exit_code == 0, r.output
    assert "dropout on" in r.output and "eval mode" in r.output and "‖dW‖" in r.output
    assert "3/3" in r.output and "test: loss" in r.output and str(run) in r.output
    assert (run / "model.npz").is_file()
    r = invoke("evaluate", run)
    assert r.exit_code == 0, r.output
    assert "confusion matrix" in r.output and "360 examples" in r.output


def test_train_json(tmp_path):
    r = runner.invoke(app, ["train", QUICK, "--set", "train.epochs=2", "--out", str(tmp_path / "r"), "--json"])
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert len(data["history"]) == 2 and 0 <= data["test"]["accuracy"] <= 1
    assert data["run_dir"] == str(tmp_path / "r")


def test_evaluate_json_matches_training(tmp_path):
    r = runner.invoke(app, ["train", QUICK, "--set", "train.epochs=2", "--out", str(tmp_path / "r"), "--json"])
    trained = json.loads(r.stdout)["test"]
    r = runner.invoke(app, ["evaluate", str(tmp_path / "r" / "model.npz"), "--json"])
    assert r.exit_code == 0
    ev = json.loads(r.stdout)
    assert ev["accuracy"] == trained["accuracy"] and ev["confusion"] == trained["confusion"]
    assert len(ev["per_class_accuracy"]) == 10


@pytest.mark.parametrize(
    "args,msg",
    [
        (["--set", "train.lr=0"], "train.lr (set by --set): must be > 0, got 0.0"),
        (["--set", "model.layers[2].dropout=1.5"], "model.layers[2].dropout (set by --set): must be in [0, 1)"),
        (["--set", "train.batch_size=0"], "train.batch_size (set by --set): must be >= 1, got 0"),
        (["--set", "train.epochs=0"], "train.epochs (set by --set): must be >= 1, got 0"),
        (["--set", "model.layers=[]"], "model.layers (set by --set): must not be empty"),
        (["--set", "model.head=mse"], "model.head (set by --set): must be one of softmax_ce"),
        (["--set", "model.layers[3].linear=5"], "the last layer has 5 outputs but dataset digits has 10 classes"),
        (["--set", "train.bogus=1"], "train.bogus (set by --set): unknown key"),
        (["--set", "data.dataset=mnist", "--data-dir", "/nonexistent", "--offline"],
         "dataset mnist: not found and --offline forbids downloading; point --data-dir at a folder holding "
         "train-images-idx3-ubyte.gz"),
    ],
)
def test_bad_config_exit_2_one_line(args, msg, tmp_path):
    r = invoke("train", QUICK, "--out", tmp_path / "r", *args)
    assert r.exit_code == 2, r.output
    assert msg in r.output
    assert r.output.startswith("error: ") and r.output.count("\n") == 1


def test_missing_config_file(tmp_path):
    r = invoke("train", tmp_path / "none.yaml")
    assert r.exit_code == 2 and f"error: {tmp_path / 'none.yaml'}: config file not found." in r.output


def test_unwritable_output_reported_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = invoke("train", QUICK, "--out", blocker)
    assert r.exit_code == 2 and "exists and is not a folder" in r.output
    assert "dropout on" not in r.output and "test:" not in r.output  # no epoch ran


def test_evaluate_bad_inputs(tmp_path):
    r = invoke("evaluate", tmp_path / "nothing")
    assert r.exit_code == 2 and "no such run folder or weights file" in r.output
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    r = invoke("evaluate", tmp_path / "junk.npz")
    assert r.exit_code == 2 and "is not an mlpkit weights file" in r.output
    r = invoke("evaluate", tmp_path)
    assert r.exit_code == 2 and "has no model.npz" in r.output


def test_help_texts_have_examples():
    r = invoke("--help")
    assert r.exit_code == 0 and "Example" in r.output and "train" in r.output and "evaluate" in r.output
    for cmd in ("train", "evaluate"):
        r = invoke(cmd, "--help")
        assert r.exit_code == 0 and "Example" in r.output, cmd


def test_version():
    r = invoke("--version")
    assert r.exit_code == 0 and r.output.strip() == f"mlpkit {__version__}"


def test_python_dash_m(tmp_path):
    p = subprocess.run([sys.executable, "-m", "mlpkit", "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip() == f"mlpkit {__version__}"


@pytest.mark.slow
@needs_mnist
def test_mnist_sigmoid_config_reaches_97_percent(tmp_path):
    """The shipped MNIST config: >= 97.0 % test accuracy in <= 10 epochs (about 8 s here)."""
    r = runner.invoke(app, ["train", str(CONFIGS / "mnist-sigmoid.yaml"), "--data-dir", str(MNIST_DIR),
                            "--out", str(tmp_path / "m"), "--json", "-q"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert len(data["history"]) <= 10
    assert data["test"]["accuracy"] >= 0.970
    first = data["history"][0]
    assert first["train_loss"] is not None and first["train_eval_loss"] is not None


@pytest.mark.parametrize("args,expect", [
    (["gradcheck", "--eps", "1e308"], "--eps must be in (0, 1] and --rtol, --atol finite and >= 0; got 1e+308, 1e-05, 1e-08"),
    (["gradcheck", "--rtol", "inf"], "--eps must be in (0, 1] and --rtol, --atol finite and >= 0; got 1e-05, inf, 1e-08"),
    (["data", "info", "d" * 5000], "File name too long"),
    (["evaluate", "r" * 5000], "r" * 50),
])
def test_hostile_arguments_are_one_line_not_a_traceback(args, expect):
    """Issue 23, item 20: an --eps of 1e308 overflowed math.fsum; a 5,000-character name raised OSError."""
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    line = r.output.strip()
    assert len(line.splitlines()) == 1 and line.startswith("error: ") and expect in line, line
