"""Prove backward passes against central finite differences, in float64.

For a scalar function f of a tensor x, each checked entry i compares the
analytic gradient a_i (from ``backward``) with the numeric one

    n_i = (f(x + eps·e_i) − f(x − eps·e_i)) / (2·eps).

Per tensor the report gives:

- **max abs error**: max_i |a_i − n_i|;
- **rel error**: ‖a − n‖₂ / (‖a‖₂ + ‖n‖₂), the normwise relative error of the
  classic gradient check (about 1e-10 when correct; above 1e-7 is suspicious;
  a wrong formula gives 1e-2 or more);
- **pass** when every entry satisfies |a_i − n_i| ≤ atol + rtol·|n_i|, the rule
  of ``numpy.allclose`` and ``torch.autograd.gradcheck``.

Entries whose ±eps step moves any ReLU input across 0 (a kink, where the
derivative jumps) are skipped and counted. Dropout masks are held fixed by
restoring each Dropout generator's state before every evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .config import Config, config_from_dict
from .data import Dataset, split_train_val, standardize, to_float
from .layers import Dropout, Layer, Linear, ReLU, Sigmoid, Tanh
from .losses import SoftmaxCrossEntropy
from .model import MLP, Rngs, build_model
from .numgrad import rel_error
from .trainer import check_model_fits_data

DEFAULT_EPS = 1e-5
DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-8
DEFAULT_SAMPLES = 100
DEFAULT_BATCH = 16
WORST_SHOWN = 3


@dataclass(frozen=True)
class WorstEntry:
    """One badly matching entry: where, and both gradients."""

    index: list[int]
    analytic: float
    numeric: float
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


@dataclass(frozen=True)
class CheckGroup:
    title: str
    rows: list[TensorCheck]


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


def _failed(name: str, shape: tuple[int, ...], error: str) -> TensorCheck:
    return TensorCheck(name, list(shape), 0, 0, None, None, False, [], error)


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
        return _failed(name, x.shape, f"backward gave a gradient of shape {analytic.shape}, expected {x.shape}")
    size = x.size
    if size <= s.samples:
        idx = np.arange(size)
    else:
        idx = np.sort(rng.choice(size, s.samples, replace=False))
    # Perturb x through a flat view in its own memory order (parameters are column-major).
    order = "F" if x.flags.f_contiguous and not x.flags.c_contiguous else "C"
    flat = x.reshape(-1, order=order)
    if not np.shares_memory(flat, x):
        raise ValueError(f"{name}: cannot perturb a non-contiguous array in place")
    f()
    base = kinks() if kinks else None
    keep, num = [], []
    for i in idx:
        old = flat[i]
        flat[i] = old + s.eps
        fp = f()
        crossed = kinks is not None and not _same(kinks(), base)
        flat[i] = old - s.eps
        fm = f()
        crossed = crossed or (kinks is not None and not _same(kinks(), base))
        flat[i] = old
        if crossed:
            continue
        keep.append(i)
        num.append((fp - fm) / (2 * s.eps))
    f()  # leave caches as they were for the unperturbed input
    keep_a = np.asarray(keep, dtype=np.int64)
    a = analytic.reshape(-1, order=order)[keep_a].astype(np.float64)
    n = np.asarray(num, dtype=np.float64)
    diff = np.abs(a - n)
    bound = s.atol + s.rtol * np.abs(n)
    ok = bool(np.all(diff <= bound)) and bool(np.isfinite(a).all())
    worst: list[WorstEntry] = []
    if not ok:
        ranked = np.argsort(-(diff / bound))[:WORST_SHOWN]
        worst = [
            WorstEntry([int(v) for v in np.unravel_index(int(keep_a[j]), x.shape, order=order)], float(a[j]), float(n[j]),
                       float(diff[j]))
            for j in ranked
        ]
    return TensorCheck(
        name,
        list(x.shape),
        len(keep),
        len(idx) - len(keep),
        float(diff.max()) if diff.size else 0.0,
        rel_error(a, n),
        ok,
        worst,
    )


def _same(a: list[np.ndarray] | None, b: list[np.ndarray] | None) -> bool:
    return a is None or b is None or all(np.array_equal(p, q) for p, q in zip(a, b))


def _frozen_dropout(layers: list[Layer]) -> Callable[[], None]:
    """A function that rewinds every Dropout generator, so each forward draws the same mask."""
    states = [(d.rng, d.rng.bit_generator.state) for d in layers if isinstance(d, Dropout)]

    def rewind() -> None:
        for g, st in states:
            g.bit_generator.state = st

    return rewind


# --------------------------------------------------------------------------- ops


def check_layer(layer: Layer, x: np.ndarray, s: CheckSettings, rng: np.random.Generator) -> list[TensorCheck]:
    """Check a layer's dx and parameter gradients on f = Σ forward(x) ⊙ G for a random G."""
    rewind = _frozen_dropout([layer])
    label = repr(layer) if not isinstance(layer, Dropout) else f"Dropout(p={layer.p:g}, {'train' if layer.training else 'eval'})"
    try:
        rewind()
        out = layer.forward(x)
        g = rng.standard_normal(out.shape)
        dx = layer.backward(g)
        grads = {k: np.array(v, copy=True) for k, v in layer.grads.items()}
    except Exception as e:  # a broken backward is a failed check, not a crash
        return [_failed(f"{label}.x", x.shape, f"forward/backward raised {type(e).__name__}: {e}")]

    def f() -> float:
        rewind()
        return float(np.sum(layer.forward(x) * g))

    kinks = (lambda: [layer.kink_pattern()]) if isinstance(layer, ReLU) else None
    rows = [check_tensor(f"{label}.x", f, x, dx, s, rng, kinks)]
    for k, p in layer.params.items():
        rows.append(check_tensor(f"{label}.{k}", f, p, grads[k], s, rng, kinks))
    return rows


def check_head(logits: np.ndarray, y: np.ndarray, s: CheckSettings, rng: np.random.Generator) -> list[TensorCheck]:
    """The softmax-CE head: d(mean loss)/d logits."""
    head = SoftmaxCrossEntropy()
    name = "SoftmaxCrossEntropy.logits"
    try:
        head.forward(logits, y)
        dz = np.array(head.backward(), copy=True)
    except Exception as e:
        return [_failed(name, logits.shape, f"forward/backward raised {type(e).__name__}: {e}")]
    return [check_tensor(name, lambda: head.forward(logits, y), logits, dz, s, rng)]


def check_ops(s: CheckSettings) -> CheckGroup:
    """Every op on its own, on random float64 inputs of a few shapes."""
    rng = np.random.default_rng(s.seed)
    rows: list[TensorCheck] = []
    # Linear: a square case (N = D = C, so wrong transposes and per-sample biases
    # still have the right shape and are caught by value) and a rectangular one.
    for n, d, c in ((4, 4, 4), (5, 3, 6)):
        lin = Linear(d, c, rng=rng, bias_init="normal", dtype=np.float64)
        rows += check_layer(lin, rng.standard_normal((n, d)), s, rng)
    for shape in ((4, 6), (2, 3)):
        for act in (Sigmoid(), Tanh(), ReLU()):
            rows += check_layer(act, 2.0 * rng.standard_normal(shape), s, rng)
    for p in (0.5, 0.2):
        rows += check_layer(Dropout(p, rng=np.random.default_rng(rng.integers(2**32))), rng.standard_normal((4, 6)),
                            s, rng)
    rows += check_layer(Dropout(0.5, rng=np.random.default_rng(0)).eval(), rng.standard_normal((4, 6)), s, rng)
    for n, c in ((5, 4), (3, 10)):
        rows += check_head(2.0 * rng.standard_normal((n, c)), rng.integers(0, c, n), s, rng)
    return CheckGroup("each op on its own (f = Σ out ⊙ G for a random G; the head: the mean loss)", rows)


# --------------------------------------------------------------------------- whole network


def check_model(model: MLP, x: np.ndarray, y: np.ndarray, s: CheckSettings, title: str) -> CheckGroup:
    """Every parameter tensor and the input, end to end through the loss (training mode)."""
    rng = np.random.default_rng(s.seed + 1)
    model.train()
    rewind = _frozen_dropout(model.layers)
    relus = [layer for layer in model.layers if isinstance(layer, ReLU)]
    kinks = (lambda: [r.kink_pattern() for r in relus]) if relus else None

    def f() -> float:
        rewind()
        return model.loss(x, y)

    try:
        f()
        dx = model.backward(need_dx=True)
        grads = {k: np.array(v, copy=True) for k, v in model.named_grads().items()}
    except Exception as e:
        return CheckGroup(title, [_failed("network", x.shape, f"forward/backward raised {type(e).__name__}: {e}")])
    rows = [check_tensor(name, f, p, grads[name], s, rng, kinks) for name, p in model.named_params().items()]
    rows.append(check_tensor("input x", f, x, dx, s, rng, kinks))
    return CheckGroup(title, rows)


DEFAULT_NETWORK = {
    "model": {
        "init": "he",
        "bias_init": "normal",
        "bias_std": 0.5,
        "layers": [{"linear": 6}, "sigmoid", {"linear": 6}, "tanh", {"dropout": 0.3}, {"linear": 5}, "relu",
                   {"linear": 10}],
    }
}


def _describe(model: MLP) -> str:
    return " → ".join(repr(layer) for layer in model.layers)


def default_network_check(s: CheckSettings) -> CheckGroup:
    cfg = config_from_dict(DEFAULT_NETWORK, "<default network>")
    rngs = Rngs.from_seed(s.seed)
    model = build_model(cfg.model, 8, rngs.init, rngs.dropout, dtype="float64")
    data_rng = np.random.default_rng(s.seed + 2)
    x = data_rng.standard_normal((6, 8))
    y = data_rng.integers(0, 10, 6)
    return check_model(model, x, y, s, f"default network, end to end: {_describe(model)} → softmax-CE, batch 6")


def config_network_check(cfg: Config, data: Dataset, s: CheckSettings, batch: int) -> CheckGroup:
    """The config's network in float64, on the first ``batch`` training examples of its data."""
    check_model_fits_data(cfg, data.num_classes)
    if cfg.data.normalize:
        data = standardize(data, split_train_val(data, cfg.data.validation)[0])
    rngs = Rngs.from_seed(cfg.seed)
    model = build_model(cfg.model, data.num_features, rngs.init, rngs.dropout, dtype="float64")
    n = min(batch, len(data.y_train))
    x = to_float(data.x_train[:n], data.scale, np.float64, shift=data.shift)
    y = data.y_train[:n]
    return check_model(model, x, y, s, f"{cfg.data.dataset} network, end to end: {_describe(model)} → softmax-CE, "
                                       f"first {n} training examples")


def gradcheck(
    cfg: Config | None = None,
    settings: CheckSettings | None = None,
    *,
    data: Dataset | None = None,
    batch: int = DEFAULT_BATCH,
) -> GradcheckReport:
    """Without a config: every op, then the default network. With one: that network on ``data``."""
    s = settings or CheckSettings()
    with np.errstate(over="ignore", under="ignore"):
        if cfg is None:
            groups = [check_ops(s), default_network_check(s)]
        else:
            if data is None:
                raise ValueError("gradcheck with a config needs its dataset")
            groups = [config_network_check(cfg, data, s, batch)]
    passed = all(r.passed for g in groups for r in g.rows)
    return GradcheckReport(groups, s.eps, s.rtol, s.atol, s.samples, passed)
