"""Matrix products for the layers, through one BLAS.

Two reasons this is not plain ``numpy.matmul``:

- BLAS's ``gemm`` computes ``C ← α·op(A)·op(B) + β·C``, and NumPy only exposes
  β = 0. With β ≠ 0 a weight update ``W ← W − lr·xᵀ·dY`` is one call, with no
  gradient matrix written and read back (784-1024-1024-10, batch 128: 0.97 ms
  instead of 1.49 ms per 1024×1024 layer and step).
- NumPy and SciPy wheels each bundle their own OpenBLAS, each with its own
  threads, which spin for a while after every call. Alternating calls into the
  two libraries makes their threads fight over the cores (measured: an MNIST
  epoch went from 0.5 s to 17 s). So every product in the training loop goes
  through SciPy's wrappers, one library, one thread pool.

All arrays are C-ordered; BLAS (Fortran-ordered) sees their transposes.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas as _blas

_GEMM = {np.dtype(np.float32): _blas.sgemm, np.dtype(np.float64): _blas.dgemm}
_DOT = {np.dtype(np.float32): _blas.sdot, np.dtype(np.float64): _blas.ddot}


def _c(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=dtype)


def _check(out: np.ndarray, c: np.ndarray) -> None:
    if not np.shares_memory(out, c):  # pragma: no cover - the wrapper had to copy: a layout bug
        raise AssertionError("BLAS result was not written in place")


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a (N, K) @ b (K, M) -> out (N, M), in ``b``'s dtype."""
    dt = b.dtype
    a, b = _c(a, dt), _c(b, dt)
    if out is None:
        out = np.empty((a.shape[0], b.shape[1]), dtype=dt)
    # outᵀ = bᵀ·aᵀ
    _check(_GEMM[dt](1.0, a=b.T, b=a.T, c=out.T, overwrite_c=1), out)
    return out


def matmul_nt(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a (N, M) @ bᵀ, b (K, M) -> out (N, K): the input gradient dY·Wᵀ."""
    dt = b.dtype
    a, b = _c(a, dt), _c(b, dt)
    if out is None:
        out = np.empty((a.shape[0], b.shape[0]), dtype=dt)
    # outᵀ = b·aᵀ, and b is bᵀ seen from Fortran
    _check(_GEMM[dt](1.0, a=b.T, b=a.T, trans_a=1, c=out.T, overwrite_c=1), out)
    return out


def matmul_tn_acc(c: np.ndarray, x: np.ndarray, dy: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> None:
    """In place: c (D, M) ← β·c + α·xᵀ·dy, for x (N, D), dy (N, M): the weight gradient or update."""
    dt = c.dtype
    x, dy = _c(x, dt), _c(dy, dt)
    # cᵀ ← α·dyᵀ·x + β·cᵀ
    _check(_GEMM[dt](alpha, a=dy.T, b=x.T, beta=beta, c=c.T, trans_b=1, overwrite_c=1), c)


def sqnorm(v: np.ndarray) -> float:
    """Σ v², for a contiguous 1-D float array."""
    return float(_DOT[v.dtype](v, v))
