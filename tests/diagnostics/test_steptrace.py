"""inspect-step: the trace is the trainer's own step, and every number it shows is what the textbook gives."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mlpkit.app.cli import app
from mlpkit.app.configfile import load_config
from mlpkit.data.load import load_digits
from mlpkit.diagnostics.steptrace import trace_step
from mlpkit.nn import reference as R
from mlpkit.training.trainer import Trainer
from tests.conftest import CONFIGS

runner = CliRunner()
SETS = ("model.dtype=float64", "train.weight_decay=0.01", "model.max_norm=50")


def _trainer(*sets: str) -> Trainer:
    return Trainer(load_config(CONFIGS / "quickstart.yaml", (*SETS, *sets)), load_digits())


def test_the_trace_is_the_trainers_own_step():
    """A traced step and a plain train_step from the same state end in the same weights, bit for bit."""
    traced, plain = _trainer(), _trainer()
    trace = trace_step(traced, 4)
    x, y = plain.data.inputs(plain.train_split, 4, plain.model.dtype, plain.model.layout)
    loss = plain.train_step(x, y)
    assert trace.loss == loss and trace.labels == y.tolist()
    for name, p in plain.model.named_params().items():
        assert np.array_equal(traced.model.named_params()[name], p), name
    assert all("forward" not in layer.__dict__ for layer in traced.model.layers)  # the wrappers are gone


@pytest.mark.parametrize("sets", [(), ("train.momentum=0",)])
def test_every_number_shown_is_the_textbook_value(sets):
    """Recomputed with nn.reference in float64 from the weights before the step and the trace's own dropout
    mask: each layer's output, the loss, dlogits, dW, db, dx and each parameter's change."""
    t = _trainer(*sets)
    before = {k: v.copy() for k, v in t.model.named_params().items()}
    x, y = t.data.inputs(t.train_split, 4, np.float64, "C")
    drop = t.model.layers[2]
    trace = trace_step(t, 4)
    keep = (drop.mask != 0).astype(np.float64)  # the step's mask, drawn by the trainer's generator

    h0, c0 = R.linear_forward(x, before["layers.0.W"], before["layers.0.b"])
    h1, c1 = R.sigmoid_forward(h0)
    h2, c2 = R.dropout_forward(h1, keep, drop.p)
    z, c3 = R.linear_forward(h2, before["layers.3.W"], before["layers.3.b"])
    loss, dz = R.softmax_cross_entropy(z, y)
    d2, dW3, db3 = R.linear_backward(dz, c3)
    d1 = R.dropout_backward(d2, c2, drop.p)
    d0 = R.sigmoid_backward(d1, c1)
    _, dW0, db0 = R.linear_backward(d0, c0)
    grads = {"layers.0.W": dW0, "layers.0.b": db0, "layers.3.W": dW3, "layers.3.b": db3}
    mu = t.cfg.train.momentum
    after = R.sgd_step(before, grads, {k: np.zeros_like(v) for k, v in before.items()}, t.cfg.train.lr, mu, 0.01,
                       {"layers.0.W": 50.0})

    def same(view, a):
        assert view.shape == list(a.shape)
        np.testing.assert_allclose(view.first, (a[0] if a.ndim == 2 else a)[:4], rtol=1e-12, atol=1e-15)
        assert view.mean == pytest.approx(a.mean(), rel=1e-10, abs=1e-15)
        assert view.std == pytest.approx(a.std(), rel=1e-10)
        assert view.norm == pytest.approx(np.linalg.norm(a), rel=1e-12)

    for row, a in zip(trace.forward, (h0, h1, h2, z)):
        same(row.out, a)
    assert trace.loss == pytest.approx(loss, rel=1e-14)
    same(trace.dlogits, dz)
    back = {b.index: b for b in trace.backward}
    assert [b.index for b in trace.backward] == [3, 2, 1, 0]
    same(back[3].grads["W"][1], dW3)
    same(back[3].grads["b"][1], db3)
    same(back[3].dx, d2)
    same(back[2].dx, d1)
    same(back[1].dx, d0)
    same(back[0].grads["W"][1], dW0)
    assert back[0].dx is None  # the first Linear computes no dL/d(input)
    for u in trace.update:
        same(u.change, after[u.name] - before[u.name])
        assert u.grad_norm == pytest.approx(np.linalg.norm(grads[u.name]), rel=1e-12)
        assert (u.velocity_norm is None) == (mu == 0)
    (m,) = trace.masks
    assert m.index == 2 and m.scale == 1.25 and m.kept == keep.mean()


def test_inspect_step_reads_at_60_columns(monkeypatch, tmp_path):
    monkeypatch.setenv("COLUMNS", "60")
    r = runner.invoke(app, ["inspect-step", str(CONFIGS / "quickstart.yaml")])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert max(len(line) for line in lines) <= 60
    for head in ("FORWARD", "LOSS  L = −(1/N)·Σₙ log softmax(z)[yₙ]", "BACKWARD  (output layer first)", "UPDATE",
                 "DROPOUT MASKS  (0 = dropped, survivors × 1/(1 − p))"):
        assert head in lines, head
    assert "[0] Linear(64, 128)  out = x·W + b" in lines and "    dW = xᵀ·dout  (64, 128)  ‖·‖ " in r.output
    r = runner.invoke(app, ["inspect-step", str(CONFIGS / "quickstart.yaml"), "--layer", "3", "--examples", "2"])
    assert r.exit_code == 0 and "[3] Linear(128, 10)" in r.output and "[0]" not in r.output
    assert "one training step: 2 examples" in r.output and "layers.0.W" not in r.output and "layers.3.W" in r.output
    r = runner.invoke(app, ["inspect-step", str(CONFIGS / "quickstart.yaml"), "--layer", "4"])
    assert r.exit_code == 2 and r.output.strip() == "error: --layer 4: the model has layers 0 to 3."


def test_inspect_step_json_and_a_saved_run(tmp_path):
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "1", "--out", str(run),
                               "-q"]).exit_code == 0
    r = runner.invoke(app, ["inspect-step", str(run), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["examples"] == 4 and [f["layer"] for f in data["forward"]] == [
        "Linear(64, 128)", "Sigmoid()", "Dropout(p=0.2)", "Linear(128, 10)"]
    assert data["backward"][-1]["dx"] is None and data["formulas"]["dlogits"] == "dz = (softmax(z) − onehot(y))/N"
