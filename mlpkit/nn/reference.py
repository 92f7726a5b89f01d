"""The textbook path: what the fast path computes, written the way the math reads (cs231n style).

Pure functions on plain float64 arrays, no BLAS flags, no memory orders. The tests and ``mlpkit
gradcheck`` hold the fast path to these.
"""

from __future__ import annotations

import numpy as np


def sgd_step(params: dict[str, np.ndarray], grads: dict[str, np.ndarray], velocity: dict[str, np.ndarray],
             lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
             max_norm: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """One step of ``torch.optim.SGD`` (dampening 0, not Nesterov), written out; returns the new parameters.

    For each parameter p with gradient g (weight decay only for weights, names ending in ``.W``)::

        g ← g + wd·p
        v ← μ·v + g          (v ← g when μ = 0)
        p ← p − lr·v

    then max-norm (Srivastava et al. 2014): each column of a weight named in ``max_norm`` (one unit's
    incoming weights) longer than its cap is scaled down to it. ``velocity`` (name -> v) is updated in place;
    start it with zeros.
    """
    out = {}
    for name, p in params.items():
        g = grads[name] + (weight_decay * p if name.endswith(".W") else 0.0)
        velocity[name] = momentum * velocity[name] + g if momentum else g
        out[name] = p - lr * velocity[name]
    for name, cap in (max_norm or {}).items():
        w = out[name]
        norms = np.sqrt((w * w).sum(axis=0))  # (C,): one per unit
        out[name] = w * np.where(norms > cap, cap / np.where(norms > 0, norms, 1.0), 1.0)
    return out
