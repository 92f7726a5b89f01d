"""What finite differences cannot see: properties of the forward passes, checked statistically or exactly.

Inverted dropout drops at rate p and keeps the expectation (within PROPERTY_SIGMAS binomial standard
errors); softmax rows sum to 1 and the loss is −log of the true class's probability; the diagnostics'
own numbers agree with their definitions.
"""

from __future__ import annotations

import functools

import numpy as np

from mlpkit.diagnostics.checks import CheckGroup, CheckSettings, PropertyCheck, TensorCheck, guarded, property_check
from mlpkit.nn import Order
from mlpkit.nn.layers import Dropout, Linear, activations
from mlpkit.nn.losses import cross_entropy_per_sample, log_softmax, softmax, softmax_cross_entropy

PROPERTY_UNITS = 1_000_000  # dropout units drawn per property check
PROPERTY_SIGMAS = 5.0  # statistical bound: a correct op fails it with probability < 1e-6


def dropout_properties(p: float, seed: int, units: int = PROPERTY_UNITS) -> list[PropertyCheck]:
    """Inverted dropout drops at rate p and keeps E[out] = x; inference mode is the identity."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 1.5, size=(units // 1000, 1000))  # positive: a dropped unit is exactly 0
    layer = Dropout(p, rng=np.random.default_rng(seed + 1))
    out = layer.forward(x)
    n = x.size
    rate = float((out == 0).mean())
    # mean(out)/mean(x) − 1 = Σ x_i (m_i/(1−p) − 1) / Σ x_i, with variance Σ x_i² · p/(1−p) / (Σ x_i)²
    sigma_ratio = float(np.sqrt((x * x).sum() * p / (1 - p)) / x.sum())
    ratio = float(out.sum() / x.sum())
    identity = float(np.abs(layer.eval().forward(x) - x).max())
    label = f"Dropout(p={p:g})"
    k = PROPERTY_SIGMAS
    return [
        property_check(f"{label} drop rate", rate, p, k * float(np.sqrt(p * (1 - p) / n)),
                  f"share of {n:,} units set to 0; bound {k:g} binomial standard errors"),
        property_check(f"{label} E[train out] / in", ratio, 1.0, k * sigma_ratio,
                  f"Σ out / Σ in over {n:,} units, survivors scaled by 1/(1−p); bound {k:g} standard errors"),
        property_check(f"{label} inference is the identity", identity, 0.0, 0.0, "max |out − in| in eval mode"),
    ]


def softmax_properties(seed: int) -> list[PropertyCheck]:
    """Softmax rows sum to 1 (even for logits of ±1e4); the loss is the mean −log p(true class)."""
    rng = np.random.default_rng(seed)
    z = 3.0 * rng.standard_normal((64, 10))
    y = rng.integers(0, 10, 64)
    big = np.concatenate([z, 1e4 * np.sign(z)])
    row_sums = softmax(big).sum(axis=1)
    ref = float(-np.log(softmax(z)[np.arange(64), y]).mean())
    # In both memory orders: the head finds the true class by flat index, and the trainer's logits are
    # column-major; the worse of the two is reported.
    orders: tuple[Order, ...] = ("C", "F")
    loss = max((softmax_cross_entropy(np.asarray(z, order=o), y)[0] for o in orders), key=lambda v: abs(v - ref))
    uniform, _ = softmax_cross_entropy(np.zeros((4, 10)), np.arange(4))
    with np.errstate(all="ignore"):  # a head that is not shifted by the row maximum overflows here
        big_loss, big_grad = softmax_cross_entropy(big, np.concatenate([y, y]))
    stable = float(np.abs(big_grad.sum(axis=1)).max()) if np.isfinite(big_loss) else float("inf")
    return [
        property_check("softmax rows sum to 1", float(np.abs(row_sums - 1).max()), 0.0, 1e-12,
                  "max |Σ_j softmax(z)_j − 1| over 128 rows, half of them with logits of ±1e4"),
        property_check("softmax-CE = mean −log p(true class)", loss, ref, 1e-12 * max(1.0, abs(ref)),
                  "the head's loss, row- and column-major logits, against −log of softmax's probability of the label"),
        property_check("softmax-CE of equal logits = log C", uniform, float(np.log(10)), 1e-12,
                  "all-zero logits over 10 classes"),
        property_check("softmax-CE is stable at logits of ±1e4", stable, 0.0, 1e-12,
                  "finite loss, and each row of its gradient sums to 0 (max |Σ_j dZ_j|)"),
        property_check("log_softmax = log(softmax)", float(np.abs(log_softmax(z) - np.log(softmax(z))).max()), 0.0,
                  1e-12, "max difference over 64 rows"),
        property_check("evaluation loss = training loss", float(cross_entropy_per_sample(z, y).mean()), loss,
                  1e-12 * max(1.0, abs(loss)), "the per-example losses scored in inference mode, averaged, against "
                  "the head's mean loss"),
    ]


def diagnostic_properties(seed: int, eps: float) -> list[PropertyCheck]:
    """What inspect-grads and the epoch table report: each activation's derivative (against central differences
    of its forward pass) and the gradient norms (both routes of ``Linear.grad_sqnorm`` against the formed ‖dW‖²)."""
    rng = np.random.default_rng(seed)
    rows = []
    for act in (kind.cls() for kind in activations()):
        x = 2.0 * rng.standard_normal((6, 5))
        x[np.abs(x) < 10 * eps] += 0.1  # away from ReLU's kink
        act.forward(x)
        d = act.derivative()
        numeric = (act.forward(x + eps) - act.forward(x - eps)) / (2 * eps)
        rows.append(property_check(f"{type(act).__name__}.derivative() = d out / d in", float(np.abs(d - numeric).max()),
                              0.0, 1e-7, "the derivative inspect-grads reports, against central differences"))
    for n in (3, 40):  # a batch smaller than the layer takes the Gram route, a larger one the formed gradient
        lin = Linear(12, 16, rng=rng, dtype=np.float64)
        x, g = rng.standard_normal((n, 12)), rng.standard_normal((n, 16))
        lin.forward(x)
        lin.backward(g)
        sq = lin.grad_sqnorm("W")
        ref = float(((x.T @ g) ** 2).sum())  # a float64 reference outside the training loop
        rows.append(property_check(f"‖dW‖² reported (batch {n}) = Σ (xᵀ·dY)²", sq, ref, 1e-10 * ref,
                              "the gradient norm of the epoch table, against the formed product"))
    return rows


def check_properties(dropout_ps: list[float], s: CheckSettings) -> CheckGroup:
    rows: list[TensorCheck | PropertyCheck] = []
    for i, p in enumerate(sorted(set(dropout_ps))):
        if p > 0:
            rows += guarded(f"Dropout(p={p:g}) properties", functools.partial(dropout_properties, p, s.seed + 10 + i))
    rows += guarded("softmax properties", lambda: softmax_properties(s.seed + 5))
    rows += guarded("diagnostics", lambda: diagnostic_properties(s.seed + 6, s.eps))
    return CheckGroup("defining properties (what finite differences cannot see: a forward pass wrong in the same "
                      "way as its backward)", rows)
