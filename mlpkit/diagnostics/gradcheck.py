"""Prove the backward passes and the training step against central finite differences, in float64.

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

Three kinds of group:

- **gradients**: each op's backward, and the whole network's, as above.
- **training steps**: real ``Trainer.train_step`` calls on a fixed minibatch
  with fixed dropout masks; each parameter's change is compared, by the same
  rule, with the textbook SGD update (momentum, weight decay, max-norm, a
  learning-rate change before the last step) computed from central-difference
  gradients. This proves the fast path the trainer actually runs (the fused
  GEMM update of ``optim.SGD``), not only ``backward``.
- **properties**: what finite differences cannot see, because a forward pass
  can be wrong in the same way as its backward: inverted dropout drops at rate
  p and keeps the expectation (within 5 binomial standard errors); softmax rows
  sum to 1 and the loss is −log of the true class's probability.

Entries whose ±eps step moves any ReLU input across 0 (a kink, where the
derivative jumps) are skipped and counted. Dropout masks are held fixed by
restoring each Dropout generator's state before every evaluation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mlpkit.config.schema import Config
from mlpkit.config.validate import config_from_dict
from mlpkit.data.core import Dataset
from mlpkit.diagnostics.numgrad import central_differences, rel_error
from mlpkit.nn import order_of
from mlpkit.nn.layers import Dropout, Layer, Linear, activations
from mlpkit.nn.losses import SoftmaxCrossEntropy, cross_entropy_per_sample, log_softmax, softmax, softmax_cross_entropy
from mlpkit.nn.model import MLP
from mlpkit.nn.reference import sgd_step
from mlpkit.train.build import build_model, check_model_fits_data
from mlpkit.train.rngs import Rngs
from mlpkit.train.trainer import Trainer

DEFAULT_EPS = 1e-5
DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-8
DEFAULT_SAMPLES = 100
DEFAULT_BATCH = 16
WORST_SHOWN = 3
TRAIN_STEPS = 3  # ≥ 2 so that momentum is used; the last one at half the learning rate
PROPERTY_UNITS = 1_000_000  # dropout units drawn per property check
PROPERTY_SIGMAS = 5.0  # statistical bound: a correct op fails it with probability < 1e-6


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
    rows: list[TensorCheck | PropertyCheck]


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


def _failed(name: str, shape: tuple[int, ...], error: str, kind: str = "gradient") -> TensorCheck:
    return TensorCheck(name, list(shape), 0, 0, None, None, False, [], error, kind)


def _sample(size: int, s: CheckSettings, rng: np.random.Generator) -> np.ndarray:
    """Flat indices to check: all of them, or ``s.samples`` drawn without replacement, sorted."""
    return np.arange(size) if size <= s.samples else np.sort(rng.choice(size, s.samples, replace=False))


def _compare(name: str, shape: tuple[int, ...], order: str, idx: np.ndarray, a: np.ndarray, n: np.ndarray,
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
        return _failed(name, x.shape, f"backward gave a gradient of shape {analytic.shape}, expected {x.shape}")
    idx = _sample(x.size, s, rng)
    order = order_of(x)  # parameters may be column-major
    f()
    crossed = _crossing(kinks)
    num, kinked = central_differences(f, x, idx, s.eps, crossed)
    f()  # leave caches as they were for the unperturbed input
    keep = idx[~kinked]
    a = analytic.reshape(-1, order=order)[keep]
    return _compare(name, x.shape, order, keep, a, num[~kinked], int(kinked.sum()), s)


def _crossing(kinks: Callable[[], list[np.ndarray]] | None) -> Callable[[], bool] | None:
    """From the kink pattern now (the unperturbed input), a test of whether a later evaluation crossed a kink."""
    if kinks is None:
        return None
    base = kinks()
    return lambda: not _same(kinks(), base)


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

    kinks = _kinks_of([layer])
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
        for act in (kind.cls() for kind in activations()):
            rows += check_layer(act, 2.0 * rng.standard_normal(shape), s, rng)
    for p in (0.5, 0.2):
        rows += check_layer(Dropout(p, rng=np.random.default_rng(rng.integers(2**32))), rng.standard_normal((4, 6)),
                            s, rng)
    rows += check_layer(Dropout(0.5, rng=np.random.default_rng(0)).eval(), rng.standard_normal((4, 6)), s, rng)
    for n, c in ((5, 4), (3, 10)):
        rows += check_head(2.0 * rng.standard_normal((n, c)), rng.integers(0, c, n), s, rng)
    return CheckGroup("each op on its own (f = Σ out ⊙ G for a random G; the head: the mean loss)", rows)


# --------------------------------------------------------------------------- whole network


def _kinks_of(layers: list[Layer]) -> Callable[[], list[np.ndarray]]:
    """The kink patterns of the non-smooth layers (ReLU) at their last forward; none for smooth ones."""
    return lambda: [k for k in (layer.kink_pattern() for layer in layers) if k is not None]


def check_model(model: MLP, x: np.ndarray, y: np.ndarray, s: CheckSettings, title: str) -> CheckGroup:
    """Every parameter tensor and the input, end to end through the loss (training mode)."""
    rng = np.random.default_rng(s.seed + 1)
    model.train()
    rewind = _frozen_dropout(model.layers)
    kinks = _kinks_of(model.layers)

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


# --------------------------------------------------------------------------- training steps


def check_training_steps(trainer: Trainer, x: np.ndarray, y: np.ndarray, s: CheckSettings, title: str,
                         steps: int = TRAIN_STEPS) -> CheckGroup:
    """Real ``trainer.train_step`` calls against the textbook update from central-difference gradients.

    Before each step the gradient of the minibatch loss is taken by central
    differences (on ``s.samples`` entries per tensor; the other entries use
    ``backward``'s gradient, itself proved by the other groups), with the
    dropout masks the step will draw. The textbook update is then PyTorch's
    SGD written out in float64 — g' = g + wd·W, v = μ·v + g', W − lr·v, then
    max-norm — and each parameter's real change must equal it by the pass
    rule. The last step runs at half the learning rate: a new lr must scale
    the whole update. Momentum and weight decay come from the trainer's
    optimizer.
    """
    model, opt = trainer.model, trainer.optimizer
    rng = np.random.default_rng(s.seed + 3)
    params = model.named_params()
    idx = {name: _sample(p.size, s, rng) for name, p in params.items()}
    kinks = _kinks_of(model.layers)
    velocity = {name: np.zeros(p.shape) for name, p in params.items()}
    real: dict[str, list[np.ndarray]] = {name: [] for name in params}
    book: dict[str, list[np.ndarray]] = {name: [] for name in params}
    skipped = dict.fromkeys(params, 0)
    constrained = {f"layers.{i}.W": layer.max_norm for i, layer in model.linear_layers() if layer.max_norm}
    model.train()
    try:
        for t in range(steps):
            lr = opt.lr = opt.lr / 2 if t == steps - 1 and steps > 1 else opt.lr
            mu, wd = opt.momentum, opt.weight_decay
            rewind = _frozen_dropout(model.layers)  # the masks this step will draw
            before = {name: p.astype(np.float64) for name, p in params.items()}

            def f() -> float:
                rewind()
                return model.loss(x, y)

            f()
            model.backward()
            grads = {name: np.array(g, dtype=np.float64) for name, g in model.named_grads().items()}
            crossed = _crossing(kinks)
            for name, p in params.items():
                num, kinked = central_differences(f, p, idx[name], s.eps, crossed)
                grads[name].reshape(-1, order=order_of(grads[name]))[idx[name][~kinked]] = num[~kinked]
                skipped[name] += int(kinked.sum())
            for name, w in sgd_step(before, grads, velocity, lr, mu, wd, constrained).items():  # the textbook update
                book[name].append(w)
            rewind()
            trainer.train_step(x, y, 0, t + 1)
            for name, p in params.items():
                real[name].append(p.astype(np.float64) - before[name])
                book[name][-1] -= before[name]
    except Exception as e:  # a broken step is a failed check, not a crash
        return CheckGroup(title, [_failed("training step", x.shape, f"raised {type(e).__name__}: {e}", "step")])
    rows = []
    for name, p in params.items():
        shape = (*p.shape, steps)  # the last index of a reported entry is the step (0-based)
        flat_real = np.concatenate([d.ravel(order="F") for d in real[name]])
        flat_book = np.concatenate([d.ravel(order="F") for d in book[name]])
        rows.append(_compare(f"step Δ {name}", shape, "F", np.arange(flat_real.size), flat_real, flat_book,
                             skipped[name], s, kind="step"))
    return CheckGroup(title, rows)


# --------------------------------------------------------------------------- properties


def _property(name: str, measured: float, expected: float, bound: float, detail: str) -> PropertyCheck:
    ok = bool(np.isfinite(measured)) and abs(measured - expected) <= bound
    return PropertyCheck(name, float(measured), float(expected), float(bound), ok, detail)


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
        _property(f"{label} drop rate", rate, p, k * float(np.sqrt(p * (1 - p) / n)),
                  f"share of {n:,} units set to 0; bound {k:g} binomial standard errors"),
        _property(f"{label} E[train out] / in", ratio, 1.0, k * sigma_ratio,
                  f"Σ out / Σ in over {n:,} units, survivors scaled by 1/(1−p); bound {k:g} standard errors"),
        _property(f"{label} inference is the identity", identity, 0.0, 0.0, "max |out − in| in eval mode"),
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
    loss = max((softmax_cross_entropy(np.asarray(z, order=o), y)[0] for o in "CF"), key=lambda v: abs(v - ref))
    uniform, _ = softmax_cross_entropy(np.zeros((4, 10)), np.arange(4))
    with np.errstate(all="ignore"):  # a head that is not shifted by the row maximum overflows here
        big_loss, big_grad = softmax_cross_entropy(big, np.concatenate([y, y]))
    stable = float(np.abs(big_grad.sum(axis=1)).max()) if np.isfinite(big_loss) else float("inf")
    return [
        _property("softmax rows sum to 1", float(np.abs(row_sums - 1).max()), 0.0, 1e-12,
                  "max |Σ_j softmax(z)_j − 1| over 128 rows, half of them with logits of ±1e4"),
        _property("softmax-CE = mean −log p(true class)", loss, ref, 1e-12 * max(1.0, abs(ref)),
                  "the head's loss, row- and column-major logits, against −log of softmax's probability of the label"),
        _property("softmax-CE of equal logits = log C", uniform, float(np.log(10)), 1e-12,
                  "all-zero logits over 10 classes"),
        _property("softmax-CE is stable at logits of ±1e4", stable, 0.0, 1e-12,
                  "finite loss, and each row of its gradient sums to 0 (max |Σ_j dZ_j|)"),
        _property("log_softmax = log(softmax)", float(np.abs(log_softmax(z) - np.log(softmax(z))).max()), 0.0,
                  1e-12, "max difference over 64 rows"),
        _property("evaluation loss = training loss", float(cross_entropy_per_sample(z, y).mean()), loss,
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
        rows.append(_property(f"{type(act).__name__}.derivative() = d out / d in", float(np.abs(d - numeric).max()),
                              0.0, 1e-7, "the derivative inspect-grads reports, against central differences"))
    for n in (3, 40):  # a batch smaller than the layer takes the Gram route, a larger one the formed gradient
        lin = Linear(12, 16, rng=rng, dtype=np.float64)
        x, g = rng.standard_normal((n, 12)), rng.standard_normal((n, 16))
        lin.forward(x)
        lin.backward(g)
        sq = lin.grad_sqnorm("W")
        ref = float(((x.T @ g) ** 2).sum())  # a float64 reference outside the training loop
        rows.append(_property(f"‖dW‖² reported (batch {n}) = Σ (xᵀ·dY)²", sq, ref, 1e-10 * ref,
                              "the gradient norm of the epoch table, against the formed product"))
    return rows


def _guarded(name: str, make: Callable[[], list[PropertyCheck]]) -> list[PropertyCheck]:
    """The checks ``make`` returns, or one failed row if computing them raised (a broken op fails, not crashes)."""
    try:
        return make()
    except Exception as e:  # noqa: BLE001
        return [PropertyCheck(name, float("nan"), 0.0, 0.0, False, f"raised {type(e).__name__}: {e}")]


def check_properties(dropout_ps: list[float], s: CheckSettings) -> CheckGroup:
    rows: list[TensorCheck | PropertyCheck] = []
    for i, p in enumerate(sorted(set(dropout_ps))):
        if p > 0:
            rows += _guarded(f"Dropout(p={p:g}) properties", lambda p=p, i=i: dropout_properties(p, s.seed + 10 + i))
    rows += _guarded("softmax properties", lambda: softmax_properties(s.seed + 5))
    rows += _guarded("diagnostics", lambda: diagnostic_properties(s.seed + 6, s.eps))
    return CheckGroup("defining properties (what finite differences cannot see: a forward pass wrong in the same "
                      "way as its backward)", rows)


# --------------------------------------------------------------------------- the default network and configs


DEFAULT_NETWORK = {
    "seed": 0,
    "model": {
        "init": "he",
        "bias_init": "normal",
        "bias_std": 0.5,
        "max_norm": 1.2,  # clips some columns of the he-initialized weights, not all
        "dtype": "float64",
        "layers": [{"linear": 6}, "sigmoid", {"linear": 6}, "tanh", {"dropout": 0.3}, {"linear": 5}, "relu",
                   {"linear": 10}],
    },
    "train": {"lr": 0.5, "momentum": 0.9, "weight_decay": 0.01},
}
DEFAULT_IN = 8


def _weight_orders(model: MLP) -> str:
    """"column-major weights", "row-major weights", or which layers are which."""
    orders = {i: "column" if layer.params["W"].flags.f_contiguous else "row" for i, layer in model.linear_layers()}
    if len(set(orders.values())) == 1:
        return f"{next(iter(orders.values()))}-major weights"
    return ", ".join(f"layers.{i} {o}-major" for i, o in orders.items())


def _describe(model: MLP) -> str:
    return " → ".join(repr(layer) for layer in model.layers)


def _synthetic(n: int, d: int, classes: int, seed: int) -> Dataset:
    """A random uint8 dataset, only so that a Trainer can be built around the default network."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, d), dtype=np.uint8)
    y = np.arange(n) % classes
    names = tuple(str(i) for i in range(classes))
    return Dataset("synthetic", x, y, x[:classes], y[:classes], 1 / 255, classes, names, (d,), "random")


def _float64(cfg: Config, batch: int, momentum: float | None = None) -> Config:
    """The config in float64, with the batch size the check uses (it picks the weights' memory order)."""
    train = dataclasses.replace(cfg.train, batch_size=batch)
    if momentum is not None:
        train = dataclasses.replace(train, momentum=momentum, momentum_start=None)
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, dtype="float64"), train=train)


def default_checks(s: CheckSettings) -> list[CheckGroup]:
    cfg = config_from_dict(DEFAULT_NETWORK, "<default network>")
    rngs = Rngs.from_seed(s.seed)
    model = build_model(cfg.model, DEFAULT_IN, rngs.init, rngs.dropout)
    data_rng = np.random.default_rng(s.seed + 2)
    x = data_rng.standard_normal((6, DEFAULT_IN))
    y = data_rng.integers(0, 10, 6)
    groups = [check_model(model, x, y, s, f"default network, end to end: {_describe(model)} → softmax-CE, batch 6")]
    t = cfg.train
    # Both weight orders, as the trainer picks them (build.weight_order: at batch 32 the default network's
    # narrow layers are row-major), and both update routes of optim.SGD (with and without momentum).
    for batch, momentum in ((6, t.momentum), (32, t.momentum), (6, 0.0), (32, 0.0)):
        trainer = Trainer(_float64(cfg, batch, momentum), _synthetic(32, DEFAULT_IN, 10, s.seed))
        xb = np.asarray(data_rng.standard_normal((batch, DEFAULT_IN)), order=trainer.model.layout)
        yb = data_rng.integers(0, 10, batch)
        groups.append(check_training_steps(
            trainer, xb, yb, s, f"default network, {TRAIN_STEPS} training steps, batch {batch} "
            f"({_weight_orders(trainer.model)}), momentum {momentum:g}, weight decay "
            f"{t.weight_decay:g}, max-norm {cfg.model.max_norm:g}, lr {t.lr:g} then {t.lr / 2:g}: each change "
            "against the textbook update from central differences"))
    groups.append(check_properties([0.5, 0.25, 0.3], s))
    return groups


def config_checks(cfg: Config, data: Dataset, s: CheckSettings, batch: int) -> list[CheckGroup]:
    """The config's network in float64, on the first ``batch`` training examples of its data."""
    check_model_fits_data(cfg, data.num_classes)
    n = min(batch, len(data.y_train))
    trainer = Trainer(_float64(cfg, n), data)  # the run's own preparation: split, normalization, initial weights
    model, d, opt = trainer.model, trainer.data, trainer.optimizer
    x, y = d.inputs(trainer.train_split, n, np.float64, model.layout)
    n = len(y)
    groups = [check_model(model, x, y, s, f"{cfg.data.dataset} network, end to end: {_describe(model)} → "
                                           f"softmax-CE, first {n} training examples")]
    groups.append(check_training_steps(
        trainer, x, y, s, f"{cfg.data.dataset} network, {TRAIN_STEPS} training steps on the same examples: lr "
        f"{opt.lr:g} then {opt.lr / 2:g}, momentum {opt.momentum:g}, weight decay {opt.weight_decay:g}"
        + (f", max-norm {cfg.model.max_norm:g}" if cfg.model.max_norm else "")
        + "; each change against the textbook update from central differences"))
    groups.append(check_properties([layer.p for _, layer in model.dropout_layers()], s))
    return groups


def gradcheck(
    cfg: Config | None = None,
    settings: CheckSettings | None = None,
    *,
    data: Dataset | None = None,
    batch: int = DEFAULT_BATCH,
) -> GradcheckReport:
    """Without a config: every op, the default network and its training steps, the properties.
    With one: that network on ``data``, its training steps, and the properties of its ops."""
    s = settings or CheckSettings()
    with np.errstate(over="ignore", under="ignore"):
        if cfg is None:
            groups = [check_ops(s), *default_checks(s)]
        else:
            if data is None:
                raise ValueError("gradcheck with a config needs its dataset")
            groups = config_checks(cfg, data, s, batch)
    passed = all(r.passed for g in groups for r in g.rows)
    return GradcheckReport(groups, s.eps, s.rtol, s.atol, s.samples, passed)
