"""The gradient-check engine: compare analytic gradients with central differences, entry by entry.

Results are plain records (TensorCheck, PropertyCheck, CheckGroup, GradcheckReport); the suites that use
the engine are in ``gradcheck`` (ops, networks, training steps) and ``properties``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mlpkit.diagnostics.numgrad import central_differences, rel_error
from mlpkit.nn import Order, order_of
from mlpkit.nn.layers import Dropout, Layer
from mlpkit.nn.losses import SoftmaxCrossEntropy

DEFAULT_EPS = 1e-5
DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-8
DEFAULT_SAMPLES = 100
WORST_SHOWN = 3


@dataclass(frozen=True)
class WorstEntry:
    """One badly matching entry: where, and both values."""

    index: list[int]
    analytic: float  # the backward pass's gradient; in a training-step row, the real parameter change
    numeric: float  # central differences; in a training-step row, the textbook change
    abs_err: float


@dataclass(frozen=True)
class TensorCheck:
    """The result for one tensor (a parameter or an input)."""

    name: str
    shape: list[int]
    checked: int
    skipped: int  # entries next to a kink
    max_abs_err: float | None  # None when backward could not be compared at all
    rel_err: float | None
    passed: bool
    worst: list[WorstEntry] = field(default_factory=list)  # filled when it failed
    error: str | None = None  # backward raised, or returned the wrong shape
    kind: str = "gradient"  # "gradient", or "step" for a parameter change of the training-step group


@dataclass(frozen=True)
class PropertyCheck:
    """A defining property of an op: a measured value against its expected value and bound."""

    name: str
    measured: float
    expected: float
    bound: float  # pass when |measured − expected| ≤ bound
    passed: bool
    detail: str  # what is measured, and where the bound comes from
    kind: str = "property"


@dataclass(frozen=True)
class CheckGroup:
    title: str
    rows: Sequence[TensorCheck | PropertyCheck]


@dataclass(frozen=True)
class GradcheckReport:
    groups: list[CheckGroup]
    eps: float
    rtol: float
    atol: float
    samples: int
    passed: bool


@dataclass(frozen=True)
class CheckSettings:
    eps: float = DEFAULT_EPS
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    samples: int = DEFAULT_SAMPLES  # entries per tensor; smaller tensors are checked whole
    seed: int = 0


# --------------------------------------------------------------------------- one tensor


def failed_check(name: str, shape: tuple[int, ...], error: str, kind: str = "gradient") -> TensorCheck:
    return TensorCheck(name, list(shape), 0, 0, None, None, False, [], error, kind)


def sample_entries(size: int, s: CheckSettings, rng: np.random.Generator) -> np.ndarray:
    """Flat indices to check: all of them, or ``s.samples`` drawn without replacement, sorted."""
    return np.arange(size) if size <= s.samples else np.sort(rng.choice(size, s.samples, replace=False))


def compare(name: str, shape: tuple[int, ...], order: Order, idx: np.ndarray, a: np.ndarray, n: np.ndarray,
             skipped: int, s: CheckSettings, kind: str = "gradient") -> TensorCheck:
    """The pass rule |a − n| ≤ atol + rtol·|n| over the entries ``idx`` (flat, in ``order``)."""
    a, n = a.astype(np.float64), n.astype(np.float64)
    diff = np.abs(a - n)
    bound = s.atol + s.rtol * np.abs(n)
    ok = bool(np.all(diff <= bound)) and bool(np.isfinite(a).all())
    worst: list[WorstEntry] = []
    if not ok:
        ranked = np.argsort(-np.nan_to_num(diff / bound, nan=np.inf))[:WORST_SHOWN]
        worst = [WorstEntry([int(v) for v in np.unravel_index(int(idx[j]), shape, order=order)], float(a[j]),
                            float(n[j]), float(diff[j])) for j in ranked]
    return TensorCheck(name, list(shape), len(idx), skipped, float(diff.max()) if diff.size else 0.0,
                       rel_error(a, n), ok, worst, kind=kind)


def check_tensor(
    name: str,
    f: Callable[[], float],
    x: np.ndarray,
    analytic: np.ndarray,
    s: CheckSettings,
    rng: np.random.Generator,
    kinks: Callable[[], list[np.ndarray]] | None = None,
) -> TensorCheck:
    """Compare ``analytic`` = df/dx with central differences of ``f`` over (a sample of) ``x``.

    ``f`` must compute the loss from the current contents of ``x`` (perturbed
    in place and restored). ``kinks`` returns the kink pattern of the last
    evaluation; an entry whose ±eps evaluations change it is skipped.
    """
    analytic = np.asarray(analytic)
    if analytic.shape != x.shape:
        return failed_check(name, x.shape, f"backward gave a gradient of shape {analytic.shape}, expected {x.shape}")
    idx = sample_entries(x.size, s, rng)
    order = order_of(x)  # parameters may be column-major
    f()
    crossed = kink_crossing(kinks)
    num, kinked = central_differences(f, x, idx, s.eps, crossed)
    f()  # leave caches as they were for the unperturbed input
    keep = idx[~kinked]
    a = analytic.reshape(-1, order=order)[keep]
    return compare(name, x.shape, order, keep, a, num[~kinked], int(kinked.sum()), s)


def kink_crossing(kinks: Callable[[], list[np.ndarray]] | None) -> Callable[[], bool] | None:
    """From the kink pattern now (the unperturbed input), a test of whether a later evaluation crossed a kink."""
    if kinks is None:
        return None
    base = kinks()
    return lambda: not same_kinks(kinks(), base)


def same_kinks(a: list[np.ndarray] | None, b: list[np.ndarray] | None) -> bool:
    return a is None or b is None or all(np.array_equal(p, q) for p, q in zip(a, b))


def frozen_dropout(layers: list[Layer]) -> Callable[[], None]:
    """A function that rewinds every Dropout generator, so each forward draws the same mask."""
    states = [(d.rng, d.rng.bit_generator.state) for d in layers if isinstance(d, Dropout)]

    def rewind() -> None:
        for g, st in states:
            g.bit_generator.state = st

    return rewind


# --------------------------------------------------------------------------- whole network


def kinks_of(layers: list[Layer]) -> Callable[[], list[np.ndarray]]:
    """The kink patterns of the non-smooth layers (ReLU) at their last forward; none for smooth ones."""
    return lambda: [k for k in (layer.kink_pattern() for layer in layers) if k is not None]


# --------------------------------------------------------------------------- properties


def property_check(name: str, measured: float, expected: float, bound: float, detail: str) -> PropertyCheck:
    ok = bool(np.isfinite(measured)) and abs(measured - expected) <= bound
    return PropertyCheck(name, float(measured), float(expected), float(bound), ok, detail)


def guarded(name: str, make: Callable[[], list[PropertyCheck]]) -> list[PropertyCheck]:
    """The checks ``make`` returns, or one failed row if computing them raised (a broken op fails, not crashes)."""
    try:
        return make()
    except Exception as e:
        return [PropertyCheck(name, float("nan"), 0.0, 0.0, False, f"raised {type(e).__name__}: {e}")]


# --------------------------------------------------------------------------- one op


def check_layer(layer: Layer, x: np.ndarray, s: CheckSettings, rng: np.random.Generator) -> list[TensorCheck]:
    """Check a layer's dx and parameter gradients on f = Σ forward(x) ⊙ G for a random G."""
    rewind = frozen_dropout([layer])
    label = repr(layer) if not isinstance(layer, Dropout) else f"Dropout(p={layer.p:g}, {'train' if layer.training else 'eval'})"
    try:
        rewind()
        out = layer.forward(x)
        g = rng.standard_normal(out.shape)
        dx = layer.backward(g)
        grads = {k: np.array(v, copy=True) for k, v in layer.grads.items()}
    except Exception as e:  # a broken backward is a failed check, not a crash
        return [failed_check(f"{label}.x", x.shape, f"forward/backward raised {type(e).__name__}: {e}")]
    if dx is None:
        return [failed_check(f"{label}.x", x.shape, "backward returned no dx")]

    def f() -> float:
        rewind()
        return float(np.sum(layer.forward(x) * g))

    kinks = kinks_of([layer])
    rows = [check_tensor(f"{label}.x", f, x, dx, s, rng, kinks)]
    for k, p in layer.params.items():
        rows.append(check_tensor(f"{label}.{k}", f, p, grads[k], s, rng, kinks))
    return rows


def check_head(logits: np.ndarray, y: np.ndarray, s: CheckSettings, rng: np.random.Generator,
               head: SoftmaxCrossEntropy | None = None) -> list[TensorCheck]:
    """The softmax-CE head (the fast one unless ``head`` is given): d(mean loss)/d logits."""
    head = head or SoftmaxCrossEntropy()
    name = f"{type(head).__name__}.logits"
    try:
        head.forward(logits, y)
        dz = np.array(head.backward(), copy=True)
    except Exception as e:
        return [failed_check(name, logits.shape, f"forward/backward raised {type(e).__name__}: {e}")]
    return [check_tensor(name, lambda: head.forward(logits, y), logits, dz, s, rng)]
