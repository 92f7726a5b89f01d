"""The softmax-cross-entropy head. The textbook version, to read first: reference.softmax_cross_entropy.

For logits Z (N, C) and integer labels y (N,):

    L  = (1/N) Σ_n ( −Z[n, y_n] + log Σ_j exp Z[n, j] )
    dZ = (softmax(Z) − onehot(y)) / N

The row maximum is subtracted before exponentiating (log-sum-exp), so logits
of ±1e4 neither overflow nor lose the answer.
"""

from __future__ import annotations

import math

import numpy as np

from mlpkit.errors import ShapeError, StateError


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of (N, C) logits, stable for any magnitude."""
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C), max of each row is 0
    lse = np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, 1)
    shifted -= lse
    return shifted


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) logits."""
    return np.exp(log_softmax(logits))


_BASES: dict[tuple[int, int, bool], np.ndarray] = {}
_FSUM_MAX = 64  # batch sizes whose loss is summed by math.fsum (see softmax_cross_entropy)


def _true_class_index(c: int, n: int, row_major: bool, y: np.ndarray) -> np.ndarray:
    """(N,) flat indices, in memory order, of the entries (y_n, n) of a contiguous (C, N) array."""
    base = _BASES.get((n, c, row_major))  # made once per shape (read-only)
    if base is None:
        base = _BASES[(n, c, row_major)] = np.arange(n) * (1 if row_major else c)
        base.flags.writeable = False
    return base + y * n if row_major else base + y


def _check(logits: np.ndarray, y: np.ndarray) -> None:
    if logits.ndim != 2 or y.shape != (logits.shape[0],):
        raise ShapeError(f"softmax-CE expects logits (N, C) and labels (N,), got {logits.shape} and {y.shape}")


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient.

    Args:
        logits: (N, C) scores.
        y: (N,) integer labels in [0, C).

    Returns:
        loss: the mean over the batch (a Python float).
        dlogits: (N, C) = (softmax(logits) − onehot(y)) / N, in the logits' memory order.

    The textbook version is ``nn.reference.softmax_cross_entropy``; this one computes the
    same numbers in as few NumPy calls as the math allows (at small batches each call costs
    more than its arithmetic; docs/performance.md has the measurements). The work is done on
    the (C, N) transpose, a view that is row-major for the trainer's column-major logits; the
    exponentials are taken in place; and the loss's sum over the batch is taken in float64,
    up to 64 examples by ``math.fsum`` of a list (beyond 64 a NumPy reduction is faster).
    """
    _check(logits, y)
    n = logits.shape[0]
    zt = logits.T  # (C, N), a view
    # ufunc methods called directly: ndarray.max goes through Python wrappers
    shifted = zt - np.maximum.reduce(zt, axis=0)  # (C, N), each column's max 0: exp cannot overflow
    row_major = shifted.flags.c_contiguous
    flat = shifted.ravel("C" if row_major else "F")  # a view (a new array is contiguous)
    c, n = shifted.shape
    picked = _true_class_index(c, n, row_major, y)  # (N,) where (y_n, n) lies: flat, not fancy, indexing
    per_sample = flat.take(picked)  # (N,) z_y − max, then the loss of each example
    e = np.exp(shifted, out=shifted)  # (C, N)
    s = np.add.reduce(e, axis=0)  # (N,) Σ_j e^{z_j − max}, in [1, C]
    # L_n = log Σ_j e^{z_j} − z_y, with the max cancelling out
    np.subtract(np.log(s), per_sample, out=per_sample)
    if n <= _FSUM_MAX:
        try:
            loss = math.fsum(per_sample.tolist()) / n
        except OverflowError:  # float64 losses near the largest double: the sum is infinite, as NumPy's would be
            loss = math.inf
    else:
        loss = float(np.add.reduce(per_sample, dtype=np.float64)) / n
    s *= n
    np.divide(e, s, out=e)  # softmax / N
    flat[picked] -= 1.0 / n  # − onehot / N
    return loss, e.T


def cross_entropy_per_sample(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N,) per-example losses −log softmax(logits)[n, y_n] (for evaluation)."""
    _check(logits, y)
    return -log_softmax(logits)[np.arange(logits.shape[0]), y]


class SoftmaxCrossEntropy:
    """The head as an object: ``forward(logits, y) -> loss``, ``backward() -> dlogits``.

    Cache: the gradient computed in forward (it costs nothing extra there).
    """

    def __init__(self) -> None:
        self._dlogits: np.ndarray | None = None

    def forward(self, logits: np.ndarray, y: np.ndarray) -> float:
        loss, self._dlogits = softmax_cross_entropy(logits, y)
        return loss

    __call__ = forward

    def backward(self) -> np.ndarray:
        if self._dlogits is None:
            raise StateError("SoftmaxCrossEntropy.backward() called before forward()")
        return self._dlogits

    def __repr__(self) -> str:
        return "SoftmaxCrossEntropy()"
