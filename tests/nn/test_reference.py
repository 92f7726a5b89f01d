"""The textbook path (mlpkit/nn/reference.py): proven against finite differences, the fast path proven equal to
it on every memory order and batch the trainer uses, and selectable as the backend a run trains with."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from mlpkit.app.cli import app
from mlpkit.app.configfile import load_config
from mlpkit.data.load import load_digits
from mlpkit.diagnostics.checks import CheckSettings
from mlpkit.diagnostics.textbook import EQUAL_TOL, fast_against_textbook, textbook_against_finite_differences
from mlpkit.nn import _kernels as kernels
from mlpkit.nn import reference as R
from mlpkit.nn.reference_model import ReferenceLinear, ReferenceSGD
from mlpkit.training.trainer import Trainer
from tests.conftest import CONFIGS

runner = CliRunner()


def test_every_fast_op_equals_the_textbook_in_every_case():
    """Linear over batches 1, 32, 256 and all four (weights, activations) memory orders; each activation and
    dropout in both orders; the loss on both sides of its fsum limit; SGD's fused and formed routes with and
    without momentum, weight decay and max-norm: all within 1e-15 of the textbook, relative."""
    rows = fast_against_textbook(CheckSettings(), detail=True).rows
    assert len(rows) == 48 + 12 + 8 + 20 + 32
    bad = [(r.name, r.rel_err, r.error) for r in rows if not r.passed]
    assert bad == [] and max(r.rel_err for r in rows) <= EQUAL_TOL


def test_plain_relative_error_is_below_1e_15_where_nothing_cancels(rng):
    """Without cancellation the rule is the plain one: ‖fast − textbook‖ / ‖textbook‖ ≤ 1e-15 (positive inputs)."""
    from mlpkit.nn.layers import Linear

    for n in (1, 32, 256):
        for order in "FC":
            lin = Linear(50, 20, rng=rng, dtype=np.float64, order=order, out_order=order)
            lin.params["W"][...] = np.abs(lin.params["W"])
            x, g = rng.random((n, 50)), rng.random((n, 20))
            out = lin.forward(np.asarray(x, order=order))
            dx = lin.backward(np.asarray(g, order=order))
            r_out, cache = R.linear_forward(x, lin.params["W"], lin.params["b"])
            r_dx, r_dW, r_db = R.linear_backward(g, cache)
            for a, b in ((out, r_out), (dx, r_dx), (lin.grads["W"], r_dW), (lin.grads["b"], r_db)):
                assert np.linalg.norm(a - b) <= 1e-15 * np.linalg.norm(b)


def test_the_textbook_functions_pass_finite_differences():
    group = textbook_against_finite_differences(CheckSettings())
    assert all(r.passed and r.rel_err < 1e-8 for r in group.rows)
    assert {r.name for r in group.rows} >= {"textbook Linear(4, 4).W", "textbook Linear(3, 6).b",
                                            "textbook Sigmoid().x", "textbook Tanh().x", "textbook ReLU().x",
                                            "textbook Dropout(p=0.5, train).x", "textbook Dropout(p=0.2, eval).x",
                                            "textbook SoftmaxCrossEntropy.logits"}


def test_a_wrong_textbook_formula_fails_its_finite_differences(monkeypatch):
    monkeypatch.setattr(R, "sigmoid_backward", lambda dout, out: dout * out)  # σ′ = y, not y(1 − y)
    failed = [r.name for r in textbook_against_finite_differences(CheckSettings()).rows if not r.passed]
    assert failed == ["textbook Sigmoid().x"]


def test_a_fast_path_that_drifts_from_the_textbook_fails(monkeypatch):
    """An error of 1e-12 in the bias-gradient sum: far below any finite-difference check, caught here."""
    real = kernels.colsum

    def drifting(a, out):
        real(a, out)
        out *= 1 + 1e-12

    monkeypatch.setattr(kernels, "colsum", drifting)
    failed = {r.name.split(" [")[0] for r in fast_against_textbook(CheckSettings()).rows if not r.passed}
    assert failed == {"Linear.db", "SGD layers.0.b"}  # the optimizer steps with the drifted bias gradient


def _trained(backend: str, *extra: str) -> Trainer:
    cfg = load_config(CONFIGS / "quickstart.yaml", ("train.epochs=1", f"model.backend={backend}", *extra))
    t = Trainer(cfg, load_digits())
    t.train_epoch()
    return t


@pytest.mark.parametrize("extra,tol", [((), 1e-5), (("model.dtype=float64", "train.weight_decay=0.001",
                                                    "model.max_norm=2"), 1e-12)])
def test_backend_reference_trains_an_epoch_to_the_same_numbers(extra, tol):
    """quickstart (sigmoid, dropout 0.2, momentum 0.9): one epoch on each backend from the same seed. The same
    dropout masks are drawn; the weights agree to float32 rounding (float64: 1e-12)."""
    fast, ref = _trained("fast", *extra), _trained("reference", *extra)
    assert isinstance(ref.model.layers[0], ReferenceLinear) and isinstance(ref.optimizer, ReferenceSGD)
    for name, w in fast.model.named_params().items():
        v = ref.model.named_params()[name]
        assert v.dtype == w.dtype
        assert np.abs(v - w).max() <= tol * np.abs(w).max(), name
    assert abs(fast.history[0].train_loss - ref.history[0].train_loss) <= tol * 10
    assert fast.history[0].val_acc == ref.history[0].val_acc


def test_the_fast_path_never_loads_the_textbook_model():
    code = ("import sys\nfrom mlpkit.app.configfile import load_config\nfrom mlpkit.data.load import load_digits\n"
            "from mlpkit.training.trainer import Trainer\n"
            f"t = Trainer(load_config({str(CONFIGS / 'quickstart.yaml')!r}, ('train.epochs=1',)), load_digits())\n"
            "t.train_epoch()\nprint('mlpkit.nn.reference_model' in sys.modules, 'mlpkit.nn.reference' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_a_wrong_backend_is_one_line():
    r = runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--set", "model.backend=textbook", "--dry-run"])
    assert r.exit_code == 2
    assert r.output.strip().endswith("model.backend (set by --set): must be one of fast, reference, got 'textbook' "
                                     "(a string).")
