"""gradcheck's "textbook" groups: ``nn.reference`` against finite differences, and the fast path against it.

The fast path (BLAS transpose flags, memory orders, in-place updates, the fused SGD) must compute what the
textbook functions compute, to float64 rounding. "Equal" here is the forward-error rule of floating point:

    ‖fast − textbook‖ ≤ 1e-15 · ‖the same computation on absolute values‖

(for a product x·W, ‖|x|·|W|‖; for a batch sum, ‖Σ|terms|‖). For well-conditioned values that is the plain
relative error; where terms cancel (a bias gradient summed over a large batch) it does not demand more
digits than the sum itself holds. Every memory order the trainer uses (weights and activations row- or
column-major) and batches of 1, 32 and 256 are compared.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from mlpkit.diagnostics.checks import (
    CheckGroup,
    CheckSettings,
    TensorCheck,
    WorstEntry,
    check_head,
    check_layer,
    failed_check,
)
from mlpkit.nn import Order
from mlpkit.nn import reference as R
from mlpkit.nn.layers import Dropout, Layer, Linear, activations
from mlpkit.nn.losses import softmax_cross_entropy
from mlpkit.nn.model import MLP
from mlpkit.nn.optim import SGD
from mlpkit.nn.reference_model import REFERENCE_CLASSES, ReferenceDropout, ReferenceLinear, ReferenceSoftmaxCrossEntropy

EQUAL_TOL = 1e-15
BATCHES = (1, 32, 256)


def equal_row(name: str, fast: np.ndarray | float | None, ref: np.ndarray | float | None,
              magnitude: np.ndarray | float) -> TensorCheck:
    """A row of the fast-against-textbook group: rel err = ‖fast − ref‖ / ‖magnitude‖, passing at ≤ EQUAL_TOL."""
    if fast is None or ref is None:
        return TensorCheck(name, [], 0, 0, None, None, False, [], "a backward returned no gradient", kind="equal")
    a, b = np.asarray(fast, np.float64), np.asarray(ref, np.float64)
    if a.shape != b.shape:
        return TensorCheck(name, list(b.shape), 0, 0, None, None, False, [],
                           f"the fast path gave shape {a.shape}, the textbook {b.shape}", kind="equal")
    diff = np.abs(a - b)
    scale = float(np.linalg.norm(np.asarray(magnitude, np.float64)))
    rel = float(np.linalg.norm(diff)) / scale if scale > 0 else (0.0 if not diff.any() else float("inf"))
    ok = rel <= EQUAL_TOL and bool(np.isfinite(a).all())
    worst = []
    if not ok and diff.size:
        j = int(np.argmax(diff))
        worst = [WorstEntry([int(v) for v in np.unravel_index(j, diff.shape)], float(a.flat[j]), float(b.flat[j]),
                            float(diff.flat[j]))]
    return TensorCheck(name, list(b.shape), int(b.size), 0, float(diff.max()) if diff.size else 0.0, rel, ok,
                       worst, kind="equal")


def textbook_against_finite_differences(s: CheckSettings) -> CheckGroup:
    """The reference functions (through their layer twins) against central differences, as ``check_ops``."""
    rng = np.random.default_rng(s.seed + 7)
    rows: list[TensorCheck] = []
    for n, d, c in ((4, 4, 4), (5, 3, 6)):
        rows += check_layer(ReferenceLinear(d, c, rng=rng, bias_init="normal", dtype=np.float64),
                            rng.standard_normal((n, d)), s, rng)
    for kind in activations():
        rows += check_layer(REFERENCE_CLASSES[kind.cls](), 2.0 * rng.standard_normal((4, 6)), s, rng)
    rows += check_layer(ReferenceDropout(0.5, rng=np.random.default_rng(rng.integers(2**32))),
                        rng.standard_normal((4, 6)), s, rng)
    rows += check_layer(ReferenceDropout(0.2, rng=np.random.default_rng(0)).eval(), rng.standard_normal((4, 6)), s, rng)
    rows += check_head(2.0 * rng.standard_normal((5, 4)), rng.integers(0, 4, 5), s, rng,
                       head=ReferenceSoftmaxCrossEntropy())
    rows = [dataclasses.replace(row, name="textbook " + row.name.replace("Reference", "")) for row in rows]
    return CheckGroup("textbook functions (mlpkit/nn/reference.py) against central differences", rows)


ORDERS: tuple[Order, ...] = ("F", "C")


def _orders() -> list[tuple[Order, Order]]:
    return list(itertools.product(ORDERS, ORDERS))  # (weights, activations): every pair the trainer may build


def fast_against_textbook(s: CheckSettings, detail: bool = False) -> CheckGroup:
    """Each fast op's outputs and gradients against the textbook functions on the same float64 inputs. An op
    that raises is a failed row, not a crash. Unless ``detail``, one row per tensor: the worst of its cases
    (batches, memory orders, update routes), named with their count."""
    rng = np.random.default_rng(s.seed + 11)
    rows: list[TensorCheck] = []
    for name, part in (("Linear", _linear_rows), ("activations", _activation_rows), ("Dropout", _dropout_rows),
                       ("softmax-CE", _loss_rows), ("SGD", _sgd_rows)):
        try:
            rows += part(rng)
        except Exception as e:  # a broken fast op is a failed check
            rows.append(failed_check(name, (), f"raised {type(e).__name__}: {e}", kind="equal"))
    if not detail:
        rows = _worst_per_tensor(rows)
    return CheckGroup(f"the fast path against the textbook, float64: ‖fast − textbook‖ ≤ {EQUAL_TOL:g}·‖the same "
                      "on |values|‖ (rel err)", rows)


def _worst_per_tensor(rows: list[TensorCheck]) -> list[TensorCheck]:
    """One row per name before its " [case]": the failing or largest-error case, with the number of cases."""
    groups: dict[str, list[TensorCheck]] = {}
    for row in rows:
        groups.setdefault(row.name.split(" [")[0], []).append(row)
    out = []
    for base, cases in groups.items():
        worst = max(cases, key=lambda r: (not r.passed, r.rel_err if r.rel_err is not None else np.inf))
        what = f" [worst of {len(cases)}: {worst.name.split(' [')[1]}" if len(cases) > 1 and " [" in worst.name else \
            (" [" + worst.name.split(" [")[1] if " [" in worst.name else "")
        out.append(dataclasses.replace(worst, name=base + what))
    return out


def _linear_rows(rng: np.random.Generator) -> list[TensorCheck]:
    rows: list[TensorCheck] = []
    d, c = 20, 10
    for n, (w_order, a_order) in itertools.product(BATCHES, _orders()):
        tag = f"[N={n}, W {w_order}, act {a_order}]"
        lin = Linear(d, c, rng=rng, bias_init="normal", dtype=np.float64, order=w_order, out_order=a_order)
        W, b = lin.params["W"], lin.params["b"]
        x = np.asarray(rng.standard_normal((n, d)), order=a_order)
        g = np.asarray(rng.standard_normal((n, c)), order=a_order)
        out = lin.forward(x)
        dx = lin.backward(g)
        r_out, cache = R.linear_forward(x, W, b)
        r_dx, r_dW, r_db = R.linear_backward(g, cache)
        ax, aW, ag = np.abs(x), np.abs(W), np.abs(g)
        rows += [equal_row(f"Linear.out {tag}", out, r_out, ax @ aW + np.abs(b)),
                 equal_row(f"Linear.dx {tag}", dx, r_dx, ag @ aW.T),
                 equal_row(f"Linear.dW {tag}", lin.grads["W"], r_dW, ax.T @ ag),
                 equal_row(f"Linear.db {tag}", lin.grads["b"], r_db, ag.sum(axis=0))]
    return rows


def _activation_rows(rng: np.random.Generator) -> list[TensorCheck]:
    rows: list[TensorCheck] = []
    for kind in activations():
        for a_order in ORDERS:
            x = np.asarray(3.0 * rng.standard_normal((32, 20)), order=a_order)
            g = np.asarray(rng.standard_normal((32, 20)), order=a_order)
            rows += _pair_rows(kind.cls.__name__, kind.cls(), REFERENCE_CLASSES[kind.cls](), x, g, a_order)
    return rows


def _pair_rows(name: str, fast: Layer, twin: Layer, x: np.ndarray, g: np.ndarray, order: str) -> list[TensorCheck]:
    """A fast layer and its textbook twin on the same input and upstream gradient: out and dx compared."""
    a_out, a_dx = fast.forward(x), fast.backward(g)
    t_out, t_dx = twin.forward(x), twin.backward(g)
    return [equal_row(f"{name}.out [act {order}]", a_out, t_out, np.abs(t_out)),
            equal_row(f"{name}.dx [act {order}]", a_dx, t_dx, np.abs(t_dx if t_dx is not None else g))]


def _dropout_rows(rng: np.random.Generator) -> list[TensorCheck]:
    rows: list[TensorCheck] = []
    for p, a_order in itertools.product((0.5, 0.2), ORDERS):
        x = np.asarray(rng.standard_normal((32, 20)), order=a_order)
        g = np.asarray(rng.standard_normal((32, 20)), order=a_order)
        seed = int(rng.integers(2**32))  # both draw the same mask from the same generator state
        rows += _pair_rows(f"Dropout(p={p:g})", Dropout(p, rng=np.random.default_rng(seed)),
                           ReferenceDropout(p, rng=np.random.default_rng(seed), mask_order=a_order), x, g, a_order)
    return rows


def _loss_rows(rng: np.random.Generator) -> list[TensorCheck]:
    rows: list[TensorCheck] = []
    c = 10
    for n, a_order in itertools.product((*BATCHES, 64, 65), ORDERS):  # the loss sums by fsum up to 64 examples
        z = np.asarray(3.0 * rng.standard_normal((n, c)), order=a_order)
        y = rng.integers(0, c, n)
        loss, dz = softmax_cross_entropy(z, y)
        r_loss, r_dz = R.softmax_cross_entropy(z, y)
        onehot = np.zeros((n, c))
        onehot[np.arange(n), y] = 1.0
        rows += [equal_row(f"softmax-CE loss [N={n}, {a_order}]", loss, r_loss, abs(r_loss)),
                 equal_row(f"softmax-CE dlogits [N={n}, {a_order}]", dz, r_dz, (np.abs(r_dz * n + onehot) + onehot) / n)]
    return rows


def _sgd_rows(rng: np.random.Generator) -> list[TensorCheck]:
    """optim.SGD's both routes (the fused GEMM from the gradient's factors, and a formed gradient) against
    ``reference.sgd_step`` over two steps (momentum, weight decay, max-norm)."""
    rows = []
    n, d, c = 32, 20, 10
    for (w_order, a_order), mu, formed in itertools.product(_orders(), (0.0, 0.9), (False, True)):
        lin = Linear(d, c, rng=rng, bias_init="normal", dtype=np.float64, order=w_order, out_order=a_order,
                     max_norm=1.5)
        model = MLP([lin], d, a_order)
        opt = SGD(model, lr=0.3, momentum=mu, weight_decay=0.01)
        params = {k: v.copy() for k, v in model.named_params().items()}
        velocity = {k: np.zeros_like(v) for k, v in params.items()}
        for _ in range(2):
            x = np.asarray(rng.standard_normal((n, d)), order=a_order)
            g = np.asarray(rng.standard_normal((n, c)), order=a_order)
            lin.forward(x)
            lin.backward(g)
            if formed:
                lin.grads["W"]  # reading forms dW: the optimizer's other route
            opt.step()
            grads = {"layers.0.W": x.T @ g, "layers.0.b": g.sum(axis=0)}
            params = R.sgd_step(params, grads, velocity, 0.3, mu, 0.01, {"layers.0.W": 1.5})
        route = "formed dW" if formed else "fused GEMM"
        for k, v in model.named_params().items():
            rows.append(equal_row(f"SGD {k} [{route}, μ {mu:g}, W {w_order}, act {a_order}]", v, params[k],
                                  np.abs(params[k]) + 0.3 * np.abs(velocity[k])))
    return rows
