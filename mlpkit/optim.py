"""Minibatch SGD with momentum and weight decay, on a model's flat parameter store.

The update follows PyTorch's ``torch.optim.SGD`` (dampening 0, not Nesterov):

    g = dW + weight_decay · W        (weights only; biases are not decayed)
    v = momentum · v + g
    W = W − lr · v

Two things make it cheap. All parameters live in one contiguous array
(``FlatParams``), so each line above is one whole-array operation however many
layers there are. And the learning rate is folded into the backward pass: the
trainer asks the model for gradients already multiplied by ``backward_scale``
(= lr; scaling the (N, C) logits gradient scales every gradient), which saves a
full pass over the parameters per step. The velocity is kept in the same
scaled units (v_s = lr · v) and rescaled if the learning rate changes.
"""

from __future__ import annotations

import numpy as np

from .model import FlatParams


class SGD:
    """Stochastic gradient descent over a FlatParams store.

    Args:
        flat: the model's parameters and gradients (``model.flat``).
        lr: learning rate (> 0).
        momentum: in [0, 1); 0 keeps no velocity.
        weight_decay: L2 coefficient, applied to weight matrices only.
    """

    def __init__(self, flat: FlatParams, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        self.flat = flat
        self._lr = float(lr)
        self.momentum = momentum
        self.weight_decay = weight_decay
        self._v: np.ndarray | None = None  # lr-scaled velocity, flat
        self._tmp: np.ndarray | None = None

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        if self._v is not None and value != self._lr:
            self._v *= self._v.dtype.type(value / self._lr)  # keep v_s = lr · v
        self._lr = float(value)

    @property
    def backward_scale(self) -> float:
        """The factor the gradients in ``flat.grad`` must carry when ``step`` runs."""
        return self._lr

    def step(self) -> None:
        """Update ``flat.data`` in place from lr-scaled gradients in ``flat.grad``."""
        p, g = self.flat.data, self.flat.grad
        if self.weight_decay:
            decay = p.dtype.type(self._lr * self.weight_decay)
            if self._tmp is None:
                self._tmp = np.empty_like(p)
            for sl in self.flat.weight_slices:
                t = self._tmp[sl]
                np.multiply(p[sl], decay, out=t)
                g[sl] += t
        if self.momentum:
            if self._v is None:
                self._v = np.zeros_like(p)
            self._v *= self._v.dtype.type(self.momentum)
            self._v += g
            g = self._v
        p -= g

    # -- checkpoints -----------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """The velocity per parameter name, as stored: lr · v (exact, for bit-identical resume)."""
        if self._v is None:
            return {}
        return {n: self._v[self.flat.slices[n]].reshape(self.flat.shapes[n]).copy() for n in self.flat.names}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``state_dict`` returned (at the same learning rate)."""
        if not state:
            self._v = None
            return
        self._v = np.zeros_like(self.flat.data)
        for n, arr in state.items():
            self._v[self.flat.slices[n]] = np.asarray(arr).ravel()
