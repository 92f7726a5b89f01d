"""Divergence: the loss or a gradient became NaN or infinite, or the loss exploded; which, where, and what to change.

The training step checks two numbers per step (the loss, and each bias gradient's norm: one value per unit);
everything here runs only once training has diverged, to say why in one sentence.
"""

from __future__ import annotations

import math

import numpy as np

from mlpkit.errors import DivergenceError
from mlpkit.nn.model import MLP
from mlpkit.nn.optim import SGD

# Divergence also means explosion: a minibatch's mean loss above EXPLOSION_FACTOR × log C, i.e. 100 times
# the loss of a uniform guess over C classes (230 for 10 classes). A training run does not come back from
# there; NaN follows a few steps later, after the weights have been ruined.
EXPLOSION_FACTOR = 100.0


def explosion_loss(num_classes: int) -> float:
    """The loss above which training has exploded: EXPLOSION_FACTOR × log C."""
    return EXPLOSION_FACTOR * math.log(max(2, num_classes))


def advice(optimizer: SGD, lr: float) -> str:
    """What to change after a divergence (``lr``: the configured train.lr)."""
    wd = optimizer.weight_decay
    if optimizer.lr * wd >= 1:
        return (f"smaller learning rate or weight decay (train.lr × weight decay is {optimizer.lr * wd:g}; "
                "at 1 or more each step overshoots zero)")
    return f"smaller learning rate (train.lr is {lr:g})"


def loss_error(loss: float, model: MLP, xb: np.ndarray, epoch: int, step: int, advice: str) -> DivergenceError:
    """The error for a step whose loss is NaN, infinite or exploded (the weights are still those before it)."""
    if not math.isfinite(loss):
        return DivergenceError(f"the loss became {loss} at epoch {epoch}, step {step} "
                               f"({where_nonfinite(model, xb)}); try a {advice}")
    return DivergenceError(f"the loss exploded to {loss:.3g} at epoch {epoch}, step {step}, over "
                           f"{EXPLOSION_FACTOR:g}× that of a uniform guess ({largest_weight(model)}); try a {advice}")


def gradient_error(name: str, epoch: int, step: int, advice: str) -> DivergenceError:
    return DivergenceError(f"the gradient of {name} became NaN or infinite at epoch {epoch}, step {step}; "
                           f"try a {advice}")


def largest_weight(model: MLP) -> str:
    """The Linear layer holding the largest weight, and how large it is."""
    sizes = {f"layers.{i}.W": float(np.abs(layer.params["W"]).max()) for i, layer in model.linear_layers()}
    name = max(sizes, key=sizes.__getitem__)
    return f"{name} holds weights up to |w| = {sizes[name]:.3g}"


def where_nonfinite(model: MLP, xb: np.ndarray) -> str:
    """Name the first parameter, or else the first layer output, that is NaN or infinite."""
    for name, p in model.named_params().items():
        if not np.isfinite(p).all():
            return f"{name} holds NaN or infinite values"
    out = xb
    with np.errstate(all="ignore"):
        for i, layer in enumerate(model.layers):
            out = layer.forward(out)
            if not np.isfinite(out).all():
                return f"the output of layers.{i} {layer!r} overflowed"
    return "the logits are too large for the loss"
