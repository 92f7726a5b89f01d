"""Central finite differences: the oracle every backward pass is checked against."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(
    f: Callable[[], float],
    x: np.ndarray,
    *,
    eps: float = 1e-6,
    indices: np.ndarray | None = None,
) -> np.ndarray:
    """d f / d x by central differences, perturbing ``x`` in place.

    Args:
        f: evaluates the scalar loss from the current contents of ``x``.
        x: the array to differentiate against (float64 for meaningful results).
        eps: the step h in (f(x + h) − f(x − h)) / 2h.
        indices: flat indices to perturb (default: all).

    Returns:
        float64 gradient estimates: shaped like ``x`` when ``indices`` is None,
        else one per index (flat indices in x's memory order).
    """
    order = "F" if x.flags.f_contiguous and not x.flags.c_contiguous else "C"
    flat = x.reshape(-1, order=order)  # a view: writes go to x
    if not np.shares_memory(flat, x):
        raise ValueError("numerical_gradient needs a contiguous array to perturb in place")
    idx = np.arange(flat.size) if indices is None else indices
    out = np.empty(len(idx), dtype=np.float64)
    for k, i in enumerate(idx):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        out[k] = (fp - fm) / (2 * eps)
    return out.reshape(x.shape, order=order) if indices is None else out


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
