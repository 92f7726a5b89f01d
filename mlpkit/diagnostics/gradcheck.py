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

import numpy as np

from mlpkit.config.schema import Config
from mlpkit.config.validate import config_from_dict
from mlpkit.data.core import Dataset
from mlpkit.diagnostics.checks import (
    CheckGroup,
    CheckSettings,
    GradcheckReport,
    TensorCheck,
    check_head,
    check_layer,
    check_tensor,
    compare,
    failed_check,
    frozen_dropout,
    kink_crossing,
    kinks_of,
    sample_entries,
)
from mlpkit.diagnostics.numgrad import central_differences
from mlpkit.diagnostics.properties import check_properties
from mlpkit.diagnostics.textbook import fast_against_textbook, textbook_against_finite_differences
from mlpkit.nn import order_of
from mlpkit.nn.layers import Dropout, Linear, activations
from mlpkit.nn.model import MLP
from mlpkit.nn.reference import sgd_step
from mlpkit.training.build import build_model, check_model_fits_data
from mlpkit.training.rngs import Rngs
from mlpkit.training.trainer import Trainer

DEFAULT_BATCH = 16
TRAIN_STEPS = 3  # ≥ 2 so that momentum is used; the last one at half the learning rate


# --------------------------------------------------------------------------- ops


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


def check_model(model: MLP, x: np.ndarray, y: np.ndarray, s: CheckSettings, title: str) -> CheckGroup:
    """Every parameter tensor and the input, end to end through the loss (training mode)."""
    rng = np.random.default_rng(s.seed + 1)
    model.train()
    rewind = frozen_dropout(model.layers)
    kinks = kinks_of(model.layers)

    def f() -> float:
        rewind()
        return model.loss(x, y)

    try:
        f()
        dx = model.backward(need_dx=True)
        grads = {k: np.array(v, copy=True) for k, v in model.named_grads().items()}
    except Exception as e:
        return CheckGroup(title, [failed_check("network", x.shape, f"forward/backward raised {type(e).__name__}: {e}")])
    if dx is None:
        return CheckGroup(title, [failed_check("network", x.shape, "backward(need_dx=True) returned no dx")])
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
    idx = {name: sample_entries(p.size, s, rng) for name, p in params.items()}
    kinks = kinks_of(model.layers)
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
            rewind = frozen_dropout(model.layers)  # the masks this step will draw
            before = {name: p.astype(np.float64) for name, p in params.items()}

            def f(rewind: Callable[[], None] = rewind) -> float:  # this step's masks
                rewind()
                return model.loss(x, y)

            f()
            model.backward()
            grads = {name: np.array(g, dtype=np.float64) for name, g in model.named_grads().items()}
            crossed = kink_crossing(kinks)
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
        return CheckGroup(title, [failed_check("training step", x.shape, f"raised {type(e).__name__}: {e}", "step")])
    rows = []
    for name, p in params.items():
        shape = (*p.shape, steps)  # the last index of a reported entry is the step (0-based)
        flat_real = np.concatenate([d.ravel(order="F") for d in real[name]])
        flat_book = np.concatenate([d.ravel(order="F") for d in book[name]])
        rows.append(compare(f"step Δ {name}", shape, "F", np.arange(flat_real.size), flat_real, flat_book,
                             skipped[name], s, kind="step"))
    return CheckGroup(title, rows)


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
            groups = [check_ops(s), textbook_against_finite_differences(s), fast_against_textbook(s),
                      *default_checks(s)]
        else:
            if data is None:
                raise ValueError("gradcheck with a config needs its dataset")
            groups = config_checks(cfg, data, s, batch)
    passed = all(r.passed for g in groups for r in g.rows)
    return GradcheckReport(groups, s.eps, s.rtol, s.atol, s.samples, passed)
