"""gradcheck proves the training step: mistakes injected into the training path (not only into
backward) make it fail, and only its training-step or property rows fail.

Each mistake is a one-node edit of the real code's syntax tree (the way a mutation-testing tool makes them),
compiled and patched in for the test.
"""

from __future__ import annotations

import ast
import inspect
import json
import sys
import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

from mlpkit.app.cli import app
from mlpkit.diagnostics import gradcheck, properties
from mlpkit.nn import layers, losses, optim
from mlpkit.training import trainer

from ..conftest import CONFIGS


def _patterns(old: str, new: str) -> tuple[ast.AST, ast.AST | list[ast.stmt]]:
    """The ASTs of a mistake's two snippets: expressions when both are one, else statements."""
    a, b = (ast.parse(textwrap.dedent(code)).body for code in (old, new))
    if len(a) == len(b) == 1 and isinstance(a[0], ast.Expr) and isinstance(b[0], ast.Expr):
        return a[0].value, b[0].value
    assert len(a) == 1, f"{old!r}: one statement"
    return a[0], b if len(b) > 1 else b[0]


def _mutated(obj, old: str, new: str):
    """``obj`` (a function, or a class's method) recompiled with the one AST node equal to ``old``'s replaced by
    ``new``'s. Nodes are compared by structure (``ast.dump``), so formatting, comments and edits elsewhere in the
    source do not matter; a change to the code the mistake is made in does (the mistake must still apply once)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    pattern, replacement = _patterns(old, new)
    want = ast.dump(pattern)
    found = []

    class Replace(ast.NodeTransformer):
        def visit(self, node):
            if ast.dump(node) == want:
                found.append(node)
                return replacement
            return super().visit(node)

    tree = ast.fix_missing_locations(Replace().visit(tree))
    assert len(found) == 1, f"{old!r} must occur once in {obj.__qualname__} (found {len(found)})"
    module = sys.modules[obj.__module__]
    namespace = dict(vars(module))
    exec(compile(tree, f"<mutated {obj.__qualname__}>", "exec"), namespace)
    return namespace[obj.__name__]


# (label, owner, attribute, old text, new text, the kind of row that must fail)
TRAINING_PATH_MISTAKES = [
    ("fused update: wrong sign", optim.SGD, "step", "kernels.matmul_tn_acc(p, *factors, -lr, 1.0 - lr * wd)",
     "kernels.matmul_tn_acc(p, *factors, lr, 1.0 - lr * wd)", "step"),
    ("fused update: lr applied twice", optim.SGD, "step", "kernels.matmul_tn_acc(p, *factors, -lr, 1.0 - lr * wd)",
     "kernels.matmul_tn_acc(p, *factors, -lr * lr, 1.0 - lr * wd)", "step"),
    ("weight decay: wrong sign", optim.SGD, "step", "kernels.axpy(wd, p, v)", "kernels.axpy(-wd, p, v)", "step"),
    ("weight decay: applied to biases", optim.SGD, "step", 'wd = self.weight_decay if key == "W" else 0.0',
     "wd = self.weight_decay", "step"),
    ("momentum: velocity not decayed", optim.SGD, "step", "kernels.matmul_tn_acc(v, *factors, 1.0, mu)",
     "kernels.matmul_tn_acc(v, *factors, 1.0, 1.0)", "step"),
    ("momentum: 1 − μ for μ", optim.SGD, "step", "kernels.matmul_tn_acc(v, *factors, 1.0, mu)",
     "kernels.matmul_tn_acc(v, *factors, 1.0, 1.0 - mu)", "step"),
    ("momentum: velocity not applied", optim.SGD, "step", "kernels.axpy(-lr, v, p)", "kernels.axpy(-lr, v * 0, p)",
     "step"),
    ("momentum on a formed gradient: wrong sign", optim.SGD, "step", "kernels.axpy(1.0, layer.grads[key], v)",
     "kernels.axpy(-1.0, layer.grads[key], v)", "step"),
    ("bias update: wrong sign", optim.SGD, "step", "kernels.axpy(-lr, layer.grads[key], p)",
     "kernels.axpy(lr, layer.grads[key], p)", "step"),
    ("max-norm not applied", optim.SGD, "step", "layer.apply_constraints()", "pass", "step"),
    ("max-norm: wrong axis", layers.Linear, "apply_constraints", 'np.einsum("ij,ij->j", W, W)',
     'np.einsum("ij,ij->i", W, W)', "step"),
    ("trainer: the update applied twice", trainer.Trainer, "train_step", "self.optimizer.step()",
     "self.optimizer.step(); self.optimizer.step()", "step"),
    ("dropout scaled by (1 − p)", layers.Dropout, "forward", "np.multiply(keep, self.scale, dtype=x.dtype)",
     "np.multiply(keep, 1.0 - self.p, dtype=x.dtype)", "property"),
    ("dropout threshold halved", layers, "keep_mask", "threshold = min(round(p * levels), levels - 1)",
     "threshold = min(round(p * levels / 2), levels - 1)", "property"),
    ("dropout keeps what it should drop", layers, "keep_mask", "return raw.reshape(shape, order=order) >= threshold",
     "return raw.reshape(shape, order=order) < threshold", "property"),
    ("log-softmax: the log-sum-exp added", losses, "log_softmax", "shifted -= lse", "shifted += lse", "property"),
]


def _patch(monkeypatch, owner, attr, old, new):
    target = getattr(owner, attr)
    monkeypatch.setattr(owner, attr, _mutated(target, old, new))


@pytest.mark.slow
@pytest.mark.parametrize("label,owner,attr,old,new,kind", TRAINING_PATH_MISTAKES,
                         ids=[m[0] for m in TRAINING_PATH_MISTAKES])
def test_gradcheck_catches_training_path_mistakes(monkeypatch, label, owner, attr, old, new, kind):
    _patch(monkeypatch, owner, attr, old, new)
    report = gradcheck.gradcheck()
    assert not report.passed, label
    failed = [r for g in report.groups for r in g.rows if not r.passed]
    kinds = {r.kind for r in failed}  # "equal": the fast-against-textbook group sees most of them too
    assert failed and kind in kinds and kinds <= {kind, "equal"}, [(r.name, r.kind) for r in failed]
    if kind == "step":  # a mistake only in the step: every backward pass still proves right
        assert all(r.passed for g in report.groups for r in g.rows if r.kind == "gradient")


def test_the_cli_exits_1_and_names_the_changed_parameter(monkeypatch):
    _patch(monkeypatch, optim.SGD, "step", "kernels.axpy(-lr, layer.grads[key], p)", "kernels.axpy(lr, layer.grads[key], p)")
    r = CliRunner().invoke(app, ["gradcheck"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("FAILED:") and "step Δ layers.0.b" in last and "step Δ layers.0.W" not in last
    assert "real " in r.output and "textbook " in r.output  # the worst entries, both values
    r = CliRunner().invoke(app, ["gradcheck", "--json"])
    rows = {row["name"]: row for g in json.loads(r.stdout)["groups"] for row in g["rows"]}
    assert r.exit_code == 1 and rows["step Δ layers.0.b"]["passed"] is False and rows["step Δ layers.0.b"]["worst"]


def test_config_gradcheck_has_the_step_group_and_catches_a_mistake(monkeypatch):
    r = CliRunner().invoke(app, ["gradcheck", str(CONFIGS / "quickstart.yaml"), "--json"])
    data = json.loads(r.stdout)
    assert r.exit_code == 0 and [len(g["rows"]) for g in data["groups"]] == [5, 4, 14]
    assert "training steps" in data["groups"][1]["title"] and "momentum 0.9" in data["groups"][1]["title"]
    _patch(monkeypatch, optim.SGD, "step", "kernels.matmul_tn_acc(v, *factors, 1.0, mu)",
           "kernels.matmul_tn_acc(v, *factors, 1.0, 1.0)")
    r = CliRunner().invoke(app, ["gradcheck", str(CONFIGS / "quickstart.yaml"), "--json"])
    assert r.exit_code == 1
    failed = {row["name"] for g in json.loads(r.stdout)["groups"] for row in g["rows"] if not row["passed"]}
    assert failed == {"step Δ layers.0.W", "step Δ layers.3.W"}


def test_the_step_group_uses_the_real_trainer_step(monkeypatch):
    """The training-step rows go through Trainer.train_step: replacing it is seen."""
    calls = []
    real = trainer.Trainer.train_step

    def spy(self, xb, yb, epoch=0, step=0):
        calls.append(xb.shape)
        return real(self, xb, yb, epoch, step)

    monkeypatch.setattr(trainer.Trainer, "train_step", spy)
    assert gradcheck.gradcheck().passed
    assert calls == ([(6, 8)] * gradcheck.TRAIN_STEPS + [(32, 8)] * gradcheck.TRAIN_STEPS) * 2


def test_the_default_steps_exercise_max_norm():
    """Max-norm is proved only if the check's steps clip some columns and leave others."""
    cfg = gradcheck.config_from_dict(gradcheck.DEFAULT_NETWORK)
    t = trainer.Trainer(gradcheck._float64(cfg, 6), gradcheck._synthetic(32, gradcheck.DEFAULT_IN, 10, 0))
    x, y = np.random.default_rng(2).standard_normal((6, gradcheck.DEFAULT_IN)), np.arange(6)
    t.train_step(x, y)
    norms = np.concatenate([np.linalg.norm(layer.params["W"], axis=0) for _, layer in t.model.linear_layers()[:-1]])
    cap = cfg.model.max_norm
    assert np.isclose(norms, cap).sum() >= 3 and (norms < cap - 1e-3).sum() >= 3


def test_dropout_properties_bound_is_statistical():
    rows = properties.dropout_properties(0.2, seed=0)
    rate, mean, ident = rows
    assert rate.passed and mean.passed and ident.passed
    assert rate.bound == pytest.approx(5 * np.sqrt(0.2 * 0.8 / 1e6))
    assert abs(mean.measured - 1) < mean.bound < 0.01
