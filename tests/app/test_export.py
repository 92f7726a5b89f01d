"""mlpkit export: ONNX checked by ONNX Runtime against mlpkit's own probabilities; safetensors under
PyTorch nn.Sequential names, loaded by safetensors' NumPy API and (where torch is installed) by the README's lines."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import stat

import numpy as np
import pytest
from typer.testing import CliRunner

from mlpkit.app import api
from mlpkit.app.cli import app
from mlpkit.data.load import load_digits
from mlpkit.nn.losses import softmax

from ..conftest import CONFIGS, ROOT

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A digits run with every kind of layer the export has to handle, its inputs normalized."""
    run = tmp_path_factory.mktemp("ex") / "run"
    r = runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "3", "--set", "data.normalize=true",
                            "--set", "model.layers=[{linear: 32}, sigmoid, {dropout: 0.2}, {linear: 24}, relu, "
                            "{linear: 16}, tanh, {linear: 10}]", "--out", str(run), "-q"])
    assert r.exit_code == 0, r.output
    return run


def _mlpkit_probs(run, x_stored: np.ndarray) -> np.ndarray:
    """mlpkit's own inference on stored pixels, through the run's recorded input scaling."""
    saved = api.load_weights(run)
    x = x_stored.astype(np.float64) * saved.data["scale"] + saved.data["shift"]
    with saved.model.mode(training=False):
        return softmax(saved.model.forward(x.astype(saved.model.dtype)).astype(np.float64))


def test_onnx_runtime_matches_mlpkit(run, tmp_path):
    import onnx
    import onnxruntime as ort

    out = tmp_path / "m.onnx"
    r = runner.invoke(app, ["export", str(run), "--format", "onnx", "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["file"] == str(out) and info["bytes"] == out.stat().st_size
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["pixels"]
    assert [o.name for o in model.graph.output] == ["logits", "probabilities"]
    assert model.opset_import[0].version == 17
    ops = [n.op_type for n in model.graph.node]
    assert ops == ["Mul", "Add", "Gemm", "Sigmoid", "Gemm", "Relu", "Gemm", "Tanh", "Gemm", "Softmax"]  # no Dropout
    d = load_digits()
    x = np.concatenate([d.x_test, d.x_train])[:1000]  # raw stored pixels, 0..16
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    probs = sess.run(["probabilities"], {"pixels": x.astype(np.float32)})[0]
    mine = _mlpkit_probs(run, x)
    assert np.abs(probs - mine).max() < 1e-5
    assert (probs.argmax(1) == mine.argmax(1)).all()


def test_safetensors_holds_pytorch_names_and_layout(run, tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import load_file

    out = tmp_path / "m.safetensors"
    r = runner.invoke(app, ["export", str(run), "-f", "safetensors", "-o", str(out)])
    assert r.exit_code == 0 and "safetensors written to" in r.output
    tensors = load_file(str(out))
    saved = api.load_weights(run)
    assert sorted(tensors) == ["0.bias", "0.weight", "3.bias", "3.weight", "5.bias", "5.weight", "7.bias", "7.weight"]
    for i in (0, 3, 5, 7):
        np.testing.assert_array_equal(tensors[f"{i}.weight"], saved.model.layers[i].params["W"].T)  # (out, in)
        np.testing.assert_array_equal(tensors[f"{i}.bias"], saved.model.layers[i].params["b"])
    with safe_open(str(out), framework="numpy") as f:
        meta = f.metadata()
    arch = json.loads(meta["architecture"])
    assert [a["type"] for a in arch] == ["Linear", "Sigmoid", "Dropout", "Linear", "ReLU", "Linear", "Tanh", "Linear"]
    assert arch[0] == {"type": "Linear", "in_features": 64, "out_features": 32} and arch[2]["p"] == 0.2
    assert float(meta["input_scale"]) == saved.data["scale"] and float(meta["input_shift"]) == saved.data["shift"]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_the_readme_lines_rebuild_the_model_in_pytorch(run, tmp_path, monkeypatch):
    import torch

    out = tmp_path / "model.safetensors"
    assert runner.invoke(app, ["export", str(run), "-f", "safetensors", "-o", str(out)]).exit_code == 0
    text = (ROOT / "README.md").read_text()
    snippet = re.search(r"```python\n(# PyTorch from mlpkit's safetensors.*?)```", text, re.S).group(1)
    d = load_digits()
    monkeypatch.chdir(tmp_path)
    scope = {"pixels": torch.from_numpy(d.x_test[:200].astype(np.float32))}
    exec(snippet, scope)
    mine = _mlpkit_probs(run, d.x_test[:200])
    assert np.abs(scope["probabilities"].detach().numpy() - mine).max() < 1e-5


def test_export_errors_are_one_line(run, tmp_path, monkeypatch):
    r = runner.invoke(app, ["export", str(run), "-o", str(tmp_path / "no" / "m.onnx")])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = runner.invoke(app, ["export", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "no such run folder" in r.output
    import builtins

    real = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    monkeypatch.delitem(__import__("sys").modules, "onnx", raising=False)
    r = runner.invoke(app, ["export", str(run), "-o", str(tmp_path / "m.onnx")])
    assert r.exit_code == 2 and "pip install 'mlpkit[export]'" in r.output and "Traceback" not in r.output


# -- issue 23, items 2 and 3: -o never replaces something that is not a regular file, nor what export reads ----


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("exp") / "run"
    r = runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "1", "--out", str(run), "-q"])
    assert r.exit_code == 0, r.output
    return run


@pytest.mark.parametrize("victim", ["model.npz", "config.yaml", "checkpoints/last.npz"])
def test_export_never_writes_over_the_run_it_reads(small_run, victim):
    before = (small_run / victim).read_bytes()
    r = runner.invoke(app, ["export", str(small_run), "--format", "onnx", "-o", str(small_run / victim)])
    assert r.exit_code == 2 and "which this command reads" in r.output and "Traceback" not in r.output, r.output
    assert (small_run / victim).read_bytes() == before


def test_export_never_replaces_a_special_file_or_a_link(small_run, tmp_path):
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    link = tmp_path / "link.onnx"
    link.symlink_to(target)
    for dest, what in ((fifo, "not a regular file"), (link, "a symbolic link"), (tmp_path, "a folder")):
        r = runner.invoke(app, ["export", str(small_run), "--format", "onnx", "-o", str(dest)])
        assert r.exit_code == 2 and f"it exists and is {what}; choose a new name" in r.output, r.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink() and target.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.onnx", "pipe.onnx", "precious.txt"]  # no debris
