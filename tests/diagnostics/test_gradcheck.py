"""gradcheck proves correct backward passes and catches the classic wrong ones."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from mlpkit.app.cli import app
from mlpkit.diagnostics import checks, gradcheck
from mlpkit.nn.layers import Dropout, Linear, ReLU, Sigmoid
from mlpkit.nn.losses import SoftmaxCrossEntropy

from ..conftest import CONFIGS, MNIST_DIR, needs_mnist

runner = CliRunner()


def _rows(report):
    return [r for g in report.groups for r in g.rows]


def test_every_op_and_default_network_pass_tightly():
    report = gradcheck.gradcheck()
    assert report.passed
    rows = _rows(report)
    names = {r.name for r in rows}
    for expected in ("Linear(4, 4).W", "Linear(4, 4).b", "Linear(4, 4).x", "Sigmoid().x", "ReLU().x", "Tanh().x",
                     "Dropout(p=0.5, train).x", "Dropout(p=0.5, eval).x", "SoftmaxCrossEntropy.logits",
                     "layers.0.W", "layers.0.b", "layers.2.W", "layers.5.W", "layers.7.b", "input x"):
        assert expected in names, expected
    for r in rows:
        if r.kind == "property":
            assert abs(r.measured - r.expected) <= r.bound, r.name
            continue
        assert r.rel_err < 1e-7, (r.name, r.rel_err)
        assert r.checked > 0 and r.error is None
    kinds = {r.kind for r in rows}
    assert kinds == {"gradient", "step", "property", "equal"}
    for expected in ("textbook Linear(4, 4).W", "textbook Sigmoid().x", "textbook ReLU().x", "textbook Tanh().x",
                     "textbook Dropout(p=0.5, train).x", "textbook SoftmaxCrossEntropy.logits"):
        assert expected in names, expected
    equal = {r.name.split(" [")[0]: r.name for r in rows if r.kind == "equal"}
    assert sorted(equal) == sorted(["Linear.out", "Linear.dx", "Linear.dW", "Linear.db", "Sigmoid.out", "Sigmoid.dx",
                                    "ReLU.out", "ReLU.dx", "Tanh.out", "Tanh.dx", "Dropout(p=0.5).out",
                                    "Dropout(p=0.5).dx", "Dropout(p=0.2).out", "Dropout(p=0.2).dx", "softmax-CE loss",
                                    "softmax-CE dlogits", "SGD layers.0.W", "SGD layers.0.b"])
    assert "worst of 12" in equal["Linear.dW"] and "worst of 16" in equal["SGD layers.0.W"]
    assert all(r.rel_err <= 1e-15 for r in rows if r.kind == "equal")
    steps = [g for g in report.groups if "training steps" in g.title]
    assert len(steps) == 4 and all(("row-major" in g.title) != ("column-major" in g.title) for g in steps)
    assert ["batch 32 (row-major weights)" in g.title for g in steps] == [False, True, False, True]
    assert sum("momentum 0," in g.title for g in steps) == 2 and sum("momentum 0.9," in g.title for g in steps) == 2
    assert [r.name for r in steps[0].rows][:2] == ["step Δ layers.0.W", "step Δ layers.0.b"]
    assert {"Dropout(p=0.5) drop rate", "Dropout(p=0.3) E[train out] / in", "softmax rows sum to 1",
            "softmax-CE = mean −log p(true class)"} <= names


def test_large_tensors_are_sampled(rng):
    s = checks.CheckSettings(samples=7)
    rows = gradcheck.check_layer(Linear(30, 20, rng=rng, dtype=np.float64), rng.standard_normal((5, 30)), s, rng)
    assert [(r.name, r.checked) for r in rows] == [("Linear(30, 20).x", 7), ("Linear(30, 20).W", 7),
                                                   ("Linear(30, 20).b", 7)]
    assert all(r.passed for r in rows)


def test_relu_kinks_are_skipped_not_failed(rng):
    x = rng.standard_normal((3, 4))
    x[0, 0], x[1, 2], x[2, 3] = 0.0, 3e-6, -2e-6  # within eps (1e-5) of the kink
    rows = gradcheck.check_layer(ReLU(), x, checks.CheckSettings(), rng)
    assert rows[0].passed and rows[0].skipped == 3 and rows[0].checked == 9


def test_dropout_mask_is_held_fixed(rng):
    rows = gradcheck.check_layer(Dropout(0.5, rng=np.random.default_rng(1)), rng.standard_normal((6, 6)), checks.CheckSettings(),
                          rng)
    assert rows[0].passed and rows[0].rel_err < 1e-9


# --------------------------------------------------------------------------- injected mistakes


def _seed_bias_backward(self, dout, *, need_dx=True):
    x = self._x
    np.matmul(x.T, dout, out=self.grads["W"])
    self.grads["b"] = dout.sum(axis=1)  # the seed's db = dY·1: a sum over classes, per sample
    return dout @ self.params["W"].T if need_dx else None


def _no_transpose_backward(self, dout, *, need_dx=True):
    x = self._x
    np.matmul(x.T, dout, out=self.grads["W"])
    np.sum(dout, axis=0, out=self.grads["b"])
    return dout @ self.params["W"] if need_dx else None  # missing .T


def _dropout_unscaled_backward(self, dout):
    if self._mask is None:
        return dout
    return dout * (self._mask != 0)  # forgot the 1/(1-p)


def _sigmoid_dy_y_backward(self, dout):
    return dout * self._out  # dy·y instead of dy·y·(1−y)


def _head_no_mean_backward(self):
    return self._dlogits * self._dlogits.shape[0]  # (P − Y), not (P − Y)/N


MISTAKES = [
    ("a: per-sample bias", Linear, "backward", _seed_bias_backward, "Linear(4, 4).b", "Linear(4, 4).W"),
    ("b: dX = dY W", Linear, "backward", _no_transpose_backward, "Linear(4, 4).x", "Linear(4, 4).W"),
    ("c: dropout without 1/(1-p)", Dropout, "backward", _dropout_unscaled_backward, "Dropout(p=0.5, train).x",
     "Dropout(p=0.5, eval).x"),
    ("d: sigmoid dy*y", Sigmoid, "backward", _sigmoid_dy_y_backward, "Sigmoid().x", "Tanh().x"),
    ("e: softmax-CE without 1/N", SoftmaxCrossEntropy, "backward", _head_no_mean_backward,
     "SoftmaxCrossEntropy.logits", "Linear(4, 4).W"),
]


@pytest.mark.slow
@pytest.mark.parametrize("label,cls,attr,bad,wrong,right", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_known_wrong_formulas_fail_and_are_named(monkeypatch, label, cls, attr, bad, wrong, right):
    monkeypatch.setattr(cls, attr, bad)
    r = runner.invoke(app, ["gradcheck"])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    failed_line = r.output.strip().splitlines()[-1]
    assert failed_line.startswith("FAILED:") and wrong in failed_line
    assert right not in failed_line
    r = runner.invoke(app, ["gradcheck", "--json"])
    assert r.exit_code == 1
    rows = {row["name"]: row for g in json.loads(r.stdout)["groups"] for row in g["rows"]}
    assert rows[wrong]["passed"] is False
    assert rows[right]["passed"] is True
    bad_row = rows[wrong]
    assert bad_row["error"] or (bad_row["worst"] and bad_row["rel_err"] > 1e-3)


def test_failing_row_shows_worst_entries(monkeypatch):
    monkeypatch.setattr(Sigmoid, "backward", _sigmoid_dy_y_backward)
    r = runner.invoke(app, ["gradcheck"])
    assert re.search(r"Sigmoid\(\)\.x\[\d+, \d+\]: analytic -?[\d.]+e[-+]\d+, numeric -?[\d.]+e[-+]\d+", r.output)


# --------------------------------------------------------------------------- command line


def test_cli_passes_and_states_rule():
    r = runner.invoke(app, ["gradcheck"])
    assert r.exit_code == 0, r.output
    assert "all 108 checks pass" in r.output  # 78 + 12 textbook against finite differences + 18 fast against textbook
    assert "≤ 1e-08 + 1e-05·|numeric|" in r.output and "eps 1e-05" in r.output


def test_cli_json():
    r = runner.invoke(app, ["gradcheck", "--json", "--samples", "5"])
    data = json.loads(r.stdout)
    assert r.exit_code == 0 and data["passed"] is True and data["eps"] == 1e-5 and data["samples"] == 5
    assert max(row["checked"] for g in data["groups"] for row in g["rows"] if row["kind"] == "gradient") == 5
    steps = [row for g in data["groups"] for row in g["rows"] if row["kind"] == "step"]
    assert len(steps) == 32 and all(row["passed"] for row in steps)


def test_cli_with_config_on_digits():
    r = runner.invoke(app, ["gradcheck", str(CONFIGS / "quickstart.yaml"), "--json"])
    data = json.loads(r.stdout)
    assert r.exit_code == 0
    names = [row["name"] for row in data["groups"][0]["rows"]]
    assert names == ["layers.0.W", "layers.0.b", "layers.3.W", "layers.3.b", "input x"]
    assert all(row["rel_err"] < 1e-7 for row in data["groups"][0]["rows"])


@pytest.mark.parametrize("args,msg", [(["--eps", "0"], "--eps must be in (0, 1]"),
                                      (["nothere.yaml"], "nothere.yaml: config file not found")])
def test_cli_bad_input_exit_2(args, msg):
    r = runner.invoke(app, ["gradcheck", *args])
    assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output


def test_help_defines_the_errors():
    r = runner.invoke(app, ["gradcheck", "--help"])
    assert r.exit_code == 0 and "rel error" in r.output and "Example" in r.output and "--samples" in r.output


@needs_mnist
def test_mnist_sigmoid_config_passes():
    r = runner.invoke(app, ["gradcheck", str(CONFIGS / "mnist-sigmoid.yaml"), "--data-dir", str(MNIST_DIR), "--json"])
    data = json.loads(r.stdout)
    assert r.exit_code == 0 and data["passed"]
    assert all(row["rel_err"] < 1e-7 for row in data["groups"][0]["rows"])
