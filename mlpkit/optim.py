"""Minibatch SGD with momentum and weight decay, updating arrays in place.

The update follows PyTorch's ``torch.optim.SGD`` (dampening 0, not Nesterov):

    g = dW + weight_decay · W        (weights only; biases are not decayed)
    v = momentum · v + g
    W = W − lr · v
"""

from __future__ import annotations

import numpy as np


class SGD:
    """Stochastic gradient descent over named parameter arrays.

    Args:
        lr: learning rate (> 0).
        momentum: in [0, 1); 0 disables the velocity buffers.
        weight_decay: L2 coefficient applied to parameters whose name ends in ``.W``.
    """

    def __init__(self, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.velocity: dict[str, np.ndarray] = {}
        self._scratch: dict[str, np.ndarray] = {}

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Update every array of ``params`` in place from the matching ``grads``."""
        for name, p in params.items():
            g = grads[name]
            buf = self._scratch.get(name)
            if buf is None:
                buf = self._scratch[name] = np.empty_like(p)
            decay = self.weight_decay if name.endswith(".W") else 0.0
            if decay:
                np.multiply(p, decay, out=buf)
                buf += g
                g = buf
            if self.momentum:
                v = self.velocity.get(name)
                if v is None:
                    v = self.velocity[name] = np.zeros_like(p)
                v *= self.momentum
                v += g
                g = v
            np.multiply(g, self.lr, out=buf)
            p -= buf

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.velocity.items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.velocity = {k: np.array(v) for k, v in state.items()}
