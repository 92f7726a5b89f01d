"""The textbook path: every forward, backward and update of mlpkit, written the way docs/math.md reads.

Start here. Each function is a few lines of plain NumPy on (N, ·) arrays, cs231n style: a ``*_forward``
returns its output and a cache, the matching ``*_backward`` takes dL/d(out) and the cache and returns the
gradients. There are no BLAS flags, memory orders or in-place tricks; the fast path (``layers.py``,
``losses.py``, ``optim.py``) computes the same numbers faster, and the tests and ``mlpkit gradcheck``
("textbook" group) prove it: both against finite differences, and the fast path against these functions
to 1e-15 in float64. ``model.backend: reference`` in a config trains with these functions.

Shape letters: N batch, D input features, C output features (classes for the loss).
"""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------- Linear


def linear_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """out = x·W + b.   x (N, D), W (D, C), b (C,) -> out (N, C); b is broadcast over the batch."""
    out = x @ W + b
    return out, (x, W)


def linear_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dW, db) from dout = dL/d(out) (N, C).

    out[n, c] = Σ_d x[n, d]·W[d, c] + b[c], so by the chain rule:
        dx = dout·Wᵀ        (N, C) @ (C, D) -> (N, D)
        dW = xᵀ·dout        (D, N) @ (N, C) -> (D, C)   each example's outer product, summed
        db = Σ_n dout[n]    (C,)                         b is shared by every example
    """
    x, W = cache
    dx = dout @ W.T
    dW = x.T @ dout
    db = dout.sum(axis=0)
    return dx, dW, db


# --------------------------------------------------------------------------- activations (elementwise)


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """out = σ(x) = 1 / (1 + e^(−x)); the cache is out, all the backward needs."""
    with np.errstate(over="ignore"):  # e^(−x) overflows to inf for x < −709 (−88 in float32): σ is then 0
        out = 1.0 / (1.0 + np.exp(-x))
    return out, out


def sigmoid_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """dx = dout · σ(x)·(1 − σ(x)): σ′ is at most 1/4, the root of the vanishing gradient."""
    return dout * out * (1.0 - out)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """out = tanh(x); the cache is out."""
    out = np.tanh(x)
    return out, out


def tanh_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """dx = dout · (1 − tanh²(x)); tanh′ is at most 1."""
    return dout * (1.0 - out**2)


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """out = max(x, 0); the cache is out."""
    out = np.maximum(x, 0)
    return out, out


def relu_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """dx = dout where the unit was active (out > 0), else 0 (at x = 0 the subgradient 0, as PyTorch takes)."""
    return dout * (out > 0)


# --------------------------------------------------------------------------- dropout


def dropout_forward(x: np.ndarray, keep: np.ndarray | None, p: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Inverted dropout: out = x · keep / (1 − p) in training, out = x in inference (``keep`` None).

    ``keep`` is the 0/1 mask, 1 with probability 1 − p (p is the probability of *dropping*, as in PyTorch
    and Keras). Dividing the survivors by 1 − p keeps E[out] = x, so inference needs no rescaling.
    """
    if keep is None:
        return x, None
    return x * keep / (1.0 - p), keep


def dropout_backward(dout: np.ndarray, keep: np.ndarray | None, p: float) -> np.ndarray:
    """dx = dout · keep / (1 − p) in training (the same factor as the forward), dout in inference."""
    if keep is None:
        return dout
    return dout * keep / (1.0 - p)


# --------------------------------------------------------------------------- softmax cross-entropy


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """(mean loss, dlogits) for logits (N, C) and integer labels y (N,).

        p = softmax(z) row by row;  L = −(1/N) Σ_n log p[n, y_n];  dz = (p − onehot(y)) / N

    The row maximum is subtracted first: softmax does not change, and e^z cannot overflow.
    """
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C), each row's max is 0
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # log softmax (N, C)
    loss = -log_p[np.arange(n), y].mean()
    onehot = np.zeros_like(logits)
    onehot[np.arange(n), y] = 1.0
    dlogits = (np.exp(log_p) - onehot) / n
    return float(loss), dlogits


# --------------------------------------------------------------------------- SGD


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
