"""Per-layer gradient norms: how fast each layer learns, and why sigmoid layers don't.

Nielsen (*Neural Networks and Deep Learning*, ch. 5) measures a layer's "speed
of learning" as ‖∂C/∂b‖: the bias gradient averaged over a probe set of
training images, then its norm. With the mean loss over a probe batch, one
backward pass gives exactly that average. Each sigmoid multiplies the backward
signal by σ′(s) ≤ 1/4, so in a deep sigmoid net the early layers' norms shrink
layer by layer — the vanishing gradient.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mlpkit.nn.layers import LAYERS, kind_of
from mlpkit.nn.model import MLP
from mlpkit.training.metrics import EpochMetrics, StepInfo
from mlpkit.training.trainer import Trainer

DEFAULT_PROBE = 1000
SATURATED = 0.01  # a unit whose activation derivative is below this barely passes a gradient



@dataclass(frozen=True)
class LinearGradStats:
    """Gradient norms of one Linear layer on the probe set."""

    layer: str  # "layers.0"
    shape: list[int]  # [in, out]
    dW_norm: float  # ‖dW‖ (Frobenius)
    db_norm: float  # ‖db‖ (L2): Nielsen's speed of learning
    dW_rms: float  # ‖dW‖ / sqrt(size): comparable across widths
    db_rms: float
    db_ratio: float  # ‖db‖ / ‖db‖ of the last hidden layer (the output layer if there is none)
    W_rms: float = float("nan")  # RMS of the weights themselves: how large the backward factors Wᵀ are


@dataclass(frozen=True)
class ActivationStats:
    """How much an activation layer lets the gradient through, on the probe set."""

    layer: str  # "layers.1"
    kind: str  # sigmoid | tanh | relu
    mean_derivative: float  # mean of σ'(s) (≤ 1/4 for sigmoid), tanh'(s), or the share active for relu
    saturated: float  # share of units with derivative < 0.01: saturated (sigmoid, tanh) or inactive (relu)


@dataclass(frozen=True)
class GradSnapshot:
    epoch: int  # 0 = initialization
    probe_loss: float
    linear: list[LinearGradStats]
    activations: list[ActivationStats]


@dataclass(frozen=True)
class GradProfile:
    description: str
    probe: int
    snapshots: list[GradSnapshot]
    history: list[EpochMetrics]
    trained: bool = False  # the first snapshot is of trained weights (a saved run), not of the initialization
    reading: str = ""  # one sentence: what the numbers show
    trained_epoch_known: bool = True  # the saved weights' epoch could be verified (else the label says unknown)


def grad_snapshot(model: MLP, x: np.ndarray, y: np.ndarray, epoch: int) -> GradSnapshot:
    """Norms of the mean gradient over the probe batch (inference mode: no dropout noise)."""
    with model.mode(training=False):
        loss = model.loss(x, y)
        model.backward()
        lin = model.linear_layers()
        ref_i = lin[-2][0] if len(lin) > 1 else lin[-1][0]  # the last hidden layer
        ref = float(np.linalg.norm(model.layers[ref_i].grads["b"].astype(np.float64)))
        stats = []
        for i, layer in lin:
            dW = layer.grads["W"].astype(np.float64)
            db = layer.grads["b"].astype(np.float64)
            nW, nb = float(np.linalg.norm(dW)), float(np.linalg.norm(db))
            W = layer.params["W"].astype(np.float64)
            stats.append(LinearGradStats(
                f"layers.{i}", list(dW.shape), nW, nb, nW / math.sqrt(dW.size), nb / math.sqrt(db.size),
                nb / ref if ref > 0 else float("inf"), float(np.sqrt((W * W).mean())),
            ))
        acts = []
        for i, act in enumerate(model.layers):
            kind = kind_of(act)
            if kind.role != "activation":
                continue
            d = act.derivative().astype(np.float64)
            acts.append(ActivationStats(f"layers.{i}", kind.name, float(d.mean()), float((d < SATURATED).mean())))
    return GradSnapshot(epoch, loss, stats, acts)


def grad_profile(
    trainer: Trainer,
    epochs: int,
    probe: int = DEFAULT_PROBE,
    *,
    description: str = "",
    on_step: Callable[[StepInfo], None] | None = None,
    trained: bool = False,
    trained_epoch_known: bool = True,
) -> GradProfile:
    """Snapshot at the trainer's current weights, then after each of ``epochs`` training epochs."""
    x, y = trainer.data.inputs(trainer.train_split, probe, trainer.model.dtype)
    start = trainer.epoch
    snaps = [grad_snapshot(trainer.model, x, y, start)]
    for _ in range(epochs):
        trainer.train_epoch(on_step)
        snaps.append(grad_snapshot(trainer.model, x, y, trainer.epoch))
    return GradProfile(description, len(y), snaps, list(trainer.history), trained, reading(snaps),
                       trained_epoch_known)


NORMS = {"db": "‖db‖: Nielsen's speed of learning (the bias gradient, the same for any fan-in)",
         "dW": "‖dW‖: the weight gradient (it also grows with the layer's fan-in)"}


def norms_of(snap: GradSnapshot, norm: str = "db") -> list[float]:
    """Each Linear layer's ‖db‖ or ‖dW‖, input to output."""
    return [s.db_norm if norm == "db" else s.dW_norm for s in snap.linear]


def ratios_of(snap: GradSnapshot, norm: str = "db") -> list[float]:
    """Each Linear layer's norm relative to the last hidden layer's (the output layer's if there is none)."""
    values = norms_of(snap, norm)
    ref = values[-2] if len(values) > 1 else values[-1]
    return [v / ref if ref > 0 else float("inf") for v in values]


def gains_of(snap: GradSnapshot) -> list[float]:
    """Layer-to-layer factors of ‖db‖ across the hidden layers: ‖db_l‖ / ‖db_(l+1)‖. Backpropagation multiplies
    the signal by Wᵀ and by the activation's derivative at each layer; a gain below 1 is a shrinking gradient."""
    db = [s.db_norm for s in snap.linear[:-1]]
    return [a / b if b > 0 else float("inf") for a, b in itertools.pairwise(db)]


def reading(snaps: list[GradSnapshot]) -> str:
    """What the profile shows, from its numbers: at the first snapshot, how much smaller the first hidden layer's
    ‖db‖ is than the last hidden layer's, and why (σ′ ≤ 1/4 for sigmoid, tanh′ ≤ 1, ReLU′ ∈ {0, 1}); then, when
    training epochs were measured, what became of it and why (the weights, the derivatives)."""
    snap = snaps[0]
    if len(snap.linear) < 3:
        return "with one hidden layer there is no depth for a gradient to vanish over"
    first, last = snap.linear[0].db_norm, snap.linear[-2].db_norm  # input side, last hidden layer
    kinds = {a.kind for a in snap.activations}
    when = f"at epoch {snap.epoch}" if snap.epoch else "at initialization"
    if not (first > 0 and last > 0):
        return f"a layer's bias gradient is exactly 0 {when}: its units pass no gradient at all"
    ratio = last / first
    if kinds == {"sigmoid"}:
        text = (f"each sigmoid multiplies the backward signal by {LAYERS['sigmoid'].derivative_bound}, so the "
                f"gradient shrinks layer by layer: {when} the first hidden layer's ‖db‖ is {ratio:.3g}× smaller "
                "than the last hidden layer's (it learns that much more slowly)")
    else:
        change = f"{ratio:.3g}× smaller" if ratio >= 1 else f"{1 / ratio:.3g}× larger"
        text = (f"{when} the first hidden layer's ‖db‖ is {change} than the last hidden layer's "
                f"({'/'.join(sorted(kinds))}: derivatives up to 1, so depth alone does not shrink the gradient)")
    return text + _training_reading(snaps)


def _training_reading(snaps: list[GradSnapshot]) -> str:
    """What training did, measured at every snapshot. Nielsen (ch. 5) measures the early layers learning more
    slowly during training; whether that lasts depends on each layer's backward factor, its weights times its
    activation's derivative, which training changes."""
    if len(snaps) < 2 or not all(s.linear[0].db_norm > 0 and s.linear[-2].db_norm > 0 for s in snaps):
        return ""
    a, b = snaps[0], snaps[-1]
    ratios = [s.linear[-2].db_norm / s.linear[0].db_norm for s in snaps]

    def seq(values: list[float]) -> str:
        return "/".join(f"{v:.2g}" for v in values)

    text = (f". The last hidden layer's ‖db‖ divided by the first's was {', '.join(f'{r:.3g}' for r in ratios)} "
            f"at epochs {a.epoch}–{b.epoch}")
    if ratios[-1] > 2:
        text += ": the early layers still learn more slowly, as Nielsen measures during training (ch. 5)"
    elif ratios[0] > 2:
        text += ": Nielsen's slow early layers (ch. 5) are there at the start, but the slowdown does not last"
    return text + (f". Layer to layer, ‖db‖ changed by factors {seq(gains_of(a))} at first and "
                   f"{seq(gains_of(b))} at the end; each factor is a layer's weights (RMS {seq([s.W_rms for s in a.linear[1:-1]])}"
                   f" → {seq([s.W_rms for s in b.linear[1:-1]])}) times its activation's derivative (mean "
                   f"{seq([x.mean_derivative for x in a.activations[:-1]])} → "
                   f"{seq([x.mean_derivative for x in b.activations[:-1]])}), and nothing holds their product at 1: "
                   "depth can shrink or grow the gradient, Nielsen's unstable gradient (ch. 5)")


@dataclass(frozen=True)
class GradComparison:
    """Several profiles (configs or runs) on one shared log scale, for ``inspect-grads A B``."""

    norm: str  # "db" or "dW"
    norm_label: str
    lo: float  # the shared scale: decades that hold every value of every profile
    hi: float
    profiles: list[GradProfile]


def compare_profiles(profiles: list[GradProfile], norm: str = "db") -> GradComparison:
    values = [v for p in profiles for snap in p.snapshots for v in norms_of(snap, norm) if v > 0 and math.isfinite(v)]
    lo = 10 ** math.floor(math.log10(min(values))) if values else 1e-3
    hi = 10 ** math.ceil(math.log10(max(values))) if values else 1.0
    return GradComparison(norm, NORMS[norm], lo, hi if hi > lo else lo * 10, profiles)


def describe_model(model: MLP) -> str:
    """'784-30-30-10 sigmoid' style one-liner."""
    widths = [str(model.in_features)] + [str(layer.params["W"].shape[1]) for _, layer in model.linear_layers()]
    acts = sorted({kind_of(layer).name for layer in model.layers if kind_of(layer).role == "activation"})
    drops = [f"{d.p:g}" for _, d in model.dropout_layers()]
    text = "-".join(widths) + (" " + "/".join(acts) if acts else "")
    return text + (f", dropout {'/'.join(drops)}" if drops else "")
