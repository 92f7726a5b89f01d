"""Minibatch SGD with momentum and weight decay. The textbook version, to read first: reference.sgd_step.

The only place the learning rate lives.

The update is PyTorch's ``torch.optim.SGD`` (dampening 0, not Nesterov), per parameter p
with gradient g = ``layer.grads[key]`` of the step's minibatch loss:

    g' = g + weight_decay · p        (weight matrices only; biases are not decayed)
    v  = momentum · v + g'           (v starts at 0, so the first v is g')
    p  = p − lr · v                  (v = g' when momentum is 0)

then each layer's constraints (max-norm) are applied. ``step()`` never changes
the gradients.

How it is fast: a Linear layer's weight gradient xᵀ·dY is left as its two
factors by backward (``LinearGrads``), and the update is applied from them by
one accumulating GEMM, ``C ← α·xᵀ·dY + β·C`` (``_kernels.matmul_tn_acc``):

    momentum 0:  W ← (1 − lr·wd)·W − lr·xᵀ·dY               (C = W, α = −lr, β = 1 − lr·wd)
    momentum μ:  v ← μ·v + xᵀ·dY;  v += wd·W;  W ← W − lr·v   (C = v, α = 1, β = μ)

the same arithmetic as the lines above, without writing dW to memory and
reading it back. A gradient that was already formed (someone read
``grads["W"]``) is applied as it is. Both routes are tested equal to the
textbook update in float64, and ``mlpkit gradcheck`` checks real steps of the
fast route against finite differences.
"""

from __future__ import annotations

import numpy as np

from mlpkit.nn import _kernels as kernels
from mlpkit.nn._kernels import LinearGrads
from mlpkit.nn.model import MLP


class SGD:
    """Stochastic gradient descent over a model's parameters.

    Args:
        model: its ``parameters()`` are updated in place.
        lr: learning rate (> 0); may change between steps (schedules): v is kept
            unscaled, so a new lr applies to the whole of the next update.
        momentum: in [0, 1); 0 keeps no velocity.
        weight_decay: L2 coefficient, applied to weight matrices only.
    """

    def __init__(self, model: MLP, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        self.params = model.parameters()
        self._layers = list({id(layer): layer for _, layer, _ in self.params}.values())  # each once, for constraints
        # Per parameter, decided once, not on every step: whether its gradient may be held as factors (xᵀ, dY)
        # (a Linear's weight: its LinearGrads, else None).
        self._plan = tuple((name, layer, key, layer.grads if key == "W" and isinstance(layer.grads, LinearGrads) else None)
                           for name, layer, key in self.params)
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.velocity: dict[str, np.ndarray] = {}  # name -> v, in the parameter's shape and memory order

    def step(self) -> None:
        """Update every parameter from the gradients its layer holds, then apply the constraints."""
        lr, mu = self.lr, self.momentum
        for name, layer, key, factored in self._plan:  # factored: a Linear's LinearGrads, for W
            p = layer.params[key]
            wd = self.weight_decay if key == "W" else 0.0
            factors = factored.factors() if factored is not None else None
            if mu:
                v = self.velocity.get(name)
                if v is None:
                    v = self.velocity[name] = np.zeros_like(p)
                if factors is not None:
                    kernels.matmul_tn_acc(v, *factors, 1.0, mu)  # v ← μ·v + xᵀ·dY
                else:
                    v *= p.dtype.type(mu)
                    kernels.axpy(1.0, layer.grads[key], v)  # v ← μ·v + g
                if wd:
                    kernels.axpy(wd, p, v)  # v += wd·p
                kernels.axpy(-lr, v, p)  # p ← p − lr·v
            elif factors is not None:
                kernels.matmul_tn_acc(p, *factors, -lr, 1.0 - lr * wd)  # W ← (1 − lr·wd)·W − lr·xᵀ·dY
            else:
                if wd:
                    p *= p.dtype.type(1.0 - lr * wd)
                kernels.axpy(-lr, layer.grads[key], p)  # p ← p − lr·g
        for layer in self._layers:
            layer.apply_constraints()

    # -- checkpoints -----------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """The velocity per parameter name (empty before the first step or without momentum)."""
        return {name: v.copy() for name, v in self.velocity.items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``state_dict`` returned: arrays of the parameters' names and shapes."""
        own = {name: layer.params[key] for name, layer, key in self.params}
        velocity = {}
        for name, arr in state.items():
            if name not in own or np.shape(arr) != own[name].shape:
                raise ValueError(f"optimizer state {name!r} does not match a parameter of the model")
            v = np.zeros_like(own[name])
            v[...] = arr
            velocity[name] = v
        self.velocity = velocity
