"""One real training step, traced layer by layer: what ``mlpkit inspect-step`` shows.

The step is the trainer's own (``Trainer.train_step``) on the first few training examples: each layer's
``forward`` and ``backward`` are wrapped for the length of the step to record what goes in and out, and the
parameters and velocities are read before and after. Nothing is recomputed for the display, so every number
shown is one the trainer computed; ``tests/diagnostics/test_steptrace.py`` recomputes them with the textbook
functions of ``nn.reference`` and finds them equal.

The formulas are those of docs/math.md; each section of that page links here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlpkit.nn.layers import Dropout, Layer, Linear, kind_of
from mlpkit.training.trainer import Trainer

DEFAULT_EXAMPLES = 4
SHOWN_VALUES = 4  # values of the first example shown per array

# What each kind of layer computes, forward and backward, as docs/math.md writes it.
FORWARD = {"linear": "out = x·W + b", "sigmoid": "out = 1/(1 + e^−x)", "tanh": "out = tanh(x)",
           "relu": "out = max(x, 0)", "dropout": "out = x·mask/(1 − p)"}
BACKWARD = {"linear": "dx = dout·Wᵀ", "sigmoid": "dx = dout·out·(1 − out)", "tanh": "dx = dout·(1 − out²)",
            "relu": "dx = dout·[out > 0]", "dropout": "dx = dout·mask/(1 − p)"}
DW, DB = "dW = xᵀ·dout", "db = Σₙ dout"
LOSS = "L = −(1/N)·Σₙ log softmax(z)[yₙ]"
DLOGITS = "dz = (softmax(z) − onehot(y))/N"
UPDATE = "g ← g + wd·W;  v ← μ·v + g;  p ← p − lr·v"


@dataclass(frozen=True)
class ArrayView:
    """An array as shown: its shape, the first values of the first example, mean, std and L2 norm."""

    shape: list[int]
    first: list[float]
    mean: float
    std: float
    norm: float


def view(a: np.ndarray) -> ArrayView:
    a64 = np.asarray(a, dtype=np.float64)
    first = a64.reshape(-1)[:SHOWN_VALUES] if a64.ndim < 2 else a64[0, :SHOWN_VALUES]
    return ArrayView(list(a.shape), [float(v) for v in first], float(a64.mean()), float(a64.std()),
                     float(np.linalg.norm(a64)))


@dataclass(frozen=True)
class ForwardRow:
    index: int
    layer: str  # repr, e.g. "Linear(64, 128)"
    kind: str
    formula: str
    out: ArrayView


@dataclass(frozen=True)
class BackwardRow:
    index: int
    layer: str
    kind: str
    dx_formula: str
    dx: ArrayView | None  # None: not computed (the first Linear layer: nobody reads dL/d(input))
    grads: dict[str, tuple[str, ArrayView]] = field(default_factory=dict)  # "W"/"b" -> (formula, view)


@dataclass(frozen=True)
class UpdateRow:
    name: str  # layers.0.W
    grad_norm: float  # ‖g‖ of this step
    lr_grad_norm: float  # ‖lr·g‖: the plain SGD step
    velocity_norm: float | None  # ‖v‖ after the step (None without momentum)
    change: ArrayView  # Δp = p_after − p_before


@dataclass(frozen=True)
class MaskRow:
    index: int
    p: float
    scale: float  # 1/(1 − p), what survivors are multiplied by
    kept: float  # share of units kept in this step
    first: list[float]  # the scaled mask's first values for the first example


@dataclass(frozen=True)
class StepTrace:
    description: str
    examples: int
    labels: list[int]
    lr: float
    momentum: float
    weight_decay: float
    input: ArrayView
    forward: list[ForwardRow]
    loss: float
    dlogits: ArrayView
    backward: list[BackwardRow]  # output layer first, as backpropagation runs
    update: list[UpdateRow]
    masks: list[MaskRow]
    layer: int | None = None  # --layer: only this layer's rows are shown (all are recorded)
    formulas: dict[str, str] = field(default_factory=lambda: {"loss": LOSS, "dlogits": DLOGITS, "update": UPDATE})


def _wrap(layer: Layer, record: dict[str, Any]) -> None:
    """Shadow the layer's forward/backward with recording versions (the instance attribute wins)."""
    forward, backward = layer.forward, layer.backward

    def traced_forward(x: np.ndarray) -> np.ndarray:
        out = forward(x)
        record["out"] = np.array(out, copy=True)
        return out

    def traced_backward(dout: np.ndarray, *, need_dx: bool = True) -> np.ndarray | None:
        record["dout"] = np.array(dout, copy=True)
        dx = backward(dout, need_dx=need_dx)
        record["dx"] = None if dx is None else np.array(dx, copy=True)
        return dx

    layer.forward = traced_forward  # type: ignore[method-assign]
    layer.backward = traced_backward  # type: ignore[method-assign]


def _unwrap(layer: Layer) -> None:
    for name in ("forward", "backward"):
        layer.__dict__.pop(name, None)


def trace_step(trainer: Trainer, examples: int = DEFAULT_EXAMPLES, layer: int | None = None,
               description: str = "") -> StepTrace:
    """Take one training step of ``trainer`` on its first ``examples`` training examples, recording it.

    The trainer's model and optimizer are changed by the step, as by any step."""
    model, opt = trainer.model, trainer.optimizer
    if layer is not None and not 0 <= layer < len(model.layers):
        raise ValueError(f"--layer {layer}: the model has layers 0 to {len(model.layers) - 1}")
    x, y = trainer.data.inputs(trainer.train_split, examples, model.dtype, model.layout)
    before = {name: p.copy() for name, p in model.named_params().items()}
    records: list[dict[str, Any]] = [{} for _ in model.layers]
    for lay, rec in zip(model.layers, records):
        _wrap(lay, rec)
    model.train()
    try:
        loss = trainer.train_step(x, y)
    finally:
        for lay in model.layers:
            _unwrap(lay)
    dlogits = model.head.backward()
    forward_rows, backward_rows, masks = [], [], []
    for i, (lay, rec) in enumerate(zip(model.layers, records)):
        kind = kind_of(lay).name
        forward_rows.append(ForwardRow(i, repr(lay), kind, FORWARD[kind], view(rec["out"])))
        if isinstance(lay, Dropout) and lay.mask is not None:
            mask = np.asarray(lay.mask)
            masks.append(MaskRow(i, lay.p, lay.scale, float((mask != 0).mean()), [float(v) for v in
                                                                                  mask[0, :SHOWN_VALUES]]))
    for i in range(len(model.layers) - 1, -1, -1):
        lay, rec = model.layers[i], records[i]
        if "dout" not in rec:  # below the first layer with parameters: backpropagation stops there
            continue
        kind = kind_of(lay).name
        grads = {}
        if isinstance(lay, Linear):
            grads = {"W": (DW, view(lay.grads["W"])), "b": (DB, view(lay.grads["b"]))}
        backward_rows.append(BackwardRow(i, repr(lay), kind, BACKWARD[kind],
                                         None if rec.get("dx") is None else view(rec["dx"]), grads))
    update = []
    for name, lay, key in model.parameters():
        g = np.asarray(lay.grads[key], dtype=np.float64)
        v = opt.velocity.get(name)
        update.append(UpdateRow(name, float(np.linalg.norm(g)), opt.lr * float(np.linalg.norm(g)),
                                None if v is None else float(np.linalg.norm(v)),
                                view(lay.params[key].astype(np.float64) - before[name])))
    return StepTrace(description, len(y), [int(v) for v in y], opt.lr, opt.momentum, opt.weight_decay, view(x),
                     forward_rows, float(loss), view(dlogits), backward_rows, update, masks, layer)

