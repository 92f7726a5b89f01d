"""Central finite differences: the oracle every backward pass and training step is checked against."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlpkit.nn import order_of


def central_differences(
    f: Callable[[], float],
    x: np.ndarray,
    indices: np.ndarray,
    eps: float,
    crossed: Callable[[], bool] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(f(x + eps·e_i) − f(x − eps·e_i)) / 2·eps for each flat index i, perturbing ``x`` in place.

    Args:
        f: evaluates the scalar loss from the current contents of ``x``.
        x: a contiguous array (float64 for meaningful results); each entry is
            restored to its exact old value after use.
        indices: flat indices in x's memory order.
        crossed: called after each evaluation; True when it fell on the other
            side of a kink (a ReLU at 0) than the unperturbed input.

    Returns:
        float64 estimates, one per index, and a boolean array marking the
        indices whose +eps or −eps evaluation crossed a kink.
    """
    flat = x.reshape(-1, order=order_of(x))  # a view: writes go to x
    if not np.shares_memory(flat, x):
        raise ValueError("central differences need a contiguous array to perturb in place")
    out = np.empty(len(indices), dtype=np.float64)
    kinked = np.zeros(len(indices), dtype=bool)
    for k, i in enumerate(indices):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        kinked[k] = crossed is not None and crossed()
        flat[i] = old - eps
        fm = f()
        kinked[k] |= crossed is not None and crossed()
        flat[i] = old
        out[k] = (fp - fm) / (2 * eps)
    return out, kinked


def numerical_gradient(f: Callable[[], float], x: np.ndarray, *, eps: float = 1e-6) -> np.ndarray:
    """d f / d x by central differences over every entry, shaped like ``x`` (float64)."""
    order = order_of(x)
    values, _ = central_differences(f, x, np.arange(x.size), eps)
    return values.reshape(x.shape, order=order)


def rel_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """Normwise relative error ‖a − n‖₂ / (‖a‖₂ + ‖n‖₂), in [0, 1].

    The classic gradient-check measure (Ng's course, UFLDL): about 1e-10 for a
    correct float64 backward pass, 1e-7 is the alarm threshold, and a wrong
    formula gives 1e-2 or more. Unlike an elementwise ratio it is not swamped
    by entries that are zero up to rounding. Two all-zero arrays give 0.
    """
    a = np.asarray(analytic, dtype=np.float64).ravel()
    n = np.asarray(numeric, dtype=np.float64).ravel()
    denom = np.linalg.norm(a) + np.linalg.norm(n)
    return float(np.linalg.norm(a - n) / denom) if denom > 0 else 0.0
