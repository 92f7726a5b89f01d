"""The fast path's kernels: matrix products through one BLAS, the factored weight gradient, dropout masks.

Private to ``mlpkit.nn`` (an import-linter contract enforces it): the layers call these, and the
textbook products they stand for are written beside each call. The products:

Three reasons this is not plain ``numpy.matmul``:

- BLAS's ``gemm`` computes ``C ← α·op(A)·op(B) + β·C``, and NumPy only exposes
  β = 0. With β ≠ 0 a weight update ``W ← W − lr·xᵀ·dY`` is one call, with no
  gradient matrix written and read back.
- NumPy and SciPy wheels each bundle their own OpenBLAS, each with its own
  threads, which spin for a while after every call. Alternating calls into the
  two libraries makes their threads fight over the cores (an MNIST epoch took
  34× longer). So every product in the training loop goes through SciPy's
  wrappers: one library, one thread pool.
- OpenBLAS is fastest here when every operand is column-major (Fortran order);
  the exception is a narrow layer's weights (``build.weight_order``). The
  measurements are in docs/performance.md. Every product
  goes through ``_gemm``, which takes operands and output in any memory order
  and reads each operand as it is or transposed, without copies.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Literal

import numpy as np
from scipy.linalg import blas as _blas

from mlpkit.errors import ShapeError

_GEMM = {np.dtype(np.float32): _blas.sgemm, np.dtype(np.float64): _blas.dgemm}
_DOT = {np.dtype(np.float32): _blas.sdot, np.dtype(np.float64): _blas.ddot}
_GEMV = {np.dtype(np.float32): _blas.sgemv, np.dtype(np.float64): _blas.dgemv}
_SYRK = {np.dtype(np.float32): _blas.ssyrk, np.dtype(np.float64): _blas.dsyrk}
_AXPY = {np.dtype(np.float32): _blas.saxpy, np.dtype(np.float64): _blas.daxpy}
_ONES: dict[tuple[int, np.dtype], np.ndarray] = {}


Order = Literal["C", "F"]  # row-major (C) or column-major (Fortran)


def order_of(a: np.ndarray) -> Order:
    """"F" for a column-major array (that is not also row-major), else "C"."""
    return "F" if a.flags.f_contiguous and not a.flags.c_contiguous else "C"


def _like(a: np.ndarray, dtype: np.dtype, f_order: bool) -> np.ndarray:
    """``a`` in the given memory order and dtype (no copy when it already is)."""
    return np.asfortranarray(a, dtype=dtype) if f_order else np.ascontiguousarray(a, dtype=dtype)


def _operand(a: np.ndarray, dt: np.dtype) -> tuple[np.ndarray, int]:
    """``a`` for a column-major GEMM as (array, trans): a row-major matrix is passed as its transpose, which
    is column-major, with trans = 1, instead of being copied. So a row-major minibatch (converted from uint8
    without transposing, which is cheaper) feeds the first layer's products as it is."""
    if a.dtype == dt:
        flags = a.flags
        if flags.f_contiguous:  # as it is: no conversion call
            return a, 0
        if flags.c_contiguous:
            return a.T, 1
    return _like(a, dt, True), 0


# The wrappers are called positionally, in f2py's order: keyword arguments cost more a call, on every product
# of a step.
#   gemm(alpha, a, b, beta, c, trans_a, trans_b, overwrite_c)     c ← α·op(a)·op(b) + β·c
#   gemv(alpha, a, x, beta, y, offx, incx, offy, incy, trans, overwrite_y)
#   syrk(alpha, a, beta, c, trans, lower, overwrite_c)              c ← α·a·aᵀ (trans 0) or α·aᵀ·a (trans 1)


# f2py hands back the very array it wrote into, or a copy when the layout did not suit it (a layout bug here).
# So each call is followed by an identity test, ``if result is not c: _not_in_place()``: written inline, not
# as a function, and not np.shares_memory (slower): it follows every product of a step.
def _not_in_place() -> None:  # pragma: no cover
    raise AssertionError("BLAS result was not written in place")


def _gemm(alpha: float, a: np.ndarray, trans_a: int, b: np.ndarray, trans_b: int, beta: float, c: np.ndarray
          ) -> None:
    """In place: c ← α·op(a)·op(b) + β·c, op(m) = mᵀ when its flag is 1, for a contiguous c of either memory
    order and operands of any. Each operand goes to the column-major BLAS as it is or as its transpose,
    through the flag (never a converted copy, unless it is strided or of another dtype); a row-major c is
    computed as its transpose cᵀ = op(b)ᵀ·op(a)ᵀ, which is column-major. So every product picks the memory
    orders that are fastest for it (``build.weight_order``) and nothing is copied to make them meet."""
    dt = c.dtype
    # The common case, an operand already column-major, tested here and not in a call to _operand: this runs
    # for every product of a step
    if a.dtype == dt and a.flags.f_contiguous:
        ta = trans_a
    else:
        a, ta = _operand(a, dt)
        ta ^= trans_a
    if b.dtype == dt and b.flags.f_contiguous:
        tb = trans_b
    else:
        b, tb = _operand(b, dt)
        tb ^= trans_b
    flags = c.flags
    if flags.f_contiguous:
        if _GEMM[dt](alpha, a, b, beta, c, ta, tb, 1) is not c:
            _not_in_place()
    elif flags.c_contiguous:
        ct = c.T
        if _GEMM[dt](alpha, b, a, beta, ct, 1 - tb, 1 - ta, 1) is not ct:
            _not_in_place()
    else:
        raise ValueError("a BLAS product needs a contiguous output array")


def matmul(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None = None, out: np.ndarray | None = None,
           order: Order | None = None) -> np.ndarray:
    """a (N, K) @ b (K, M) [+ bias (M,) on every row] -> (N, M) in ``b``'s dtype: ``out`` if given
    (contiguous), else a new array in ``order`` ("F" or "C"; by default ``b``'s).

    The bias is written into the output first and the product accumulated onto it
    (β = 1): a write-only pass instead of a read-modify-write one.
    """
    if out is None:
        out = np.empty((a.shape[0], b.shape[1]), dtype=b.dtype, order=order or order_of(b))
    beta = 0.0
    if bias is not None:
        out[...] = bias
        beta = 1.0
    _gemm(1.0, a, 0, b, 0, beta, out)
    return out


def matmul_nt(a: np.ndarray, b: np.ndarray, order: Order | None = None) -> np.ndarray:
    """a (N, M) @ bᵀ for b (K, M) -> a new (N, K) array in ``order`` (by default ``b``'s): the input
    gradient dY·Wᵀ."""
    out = np.empty((a.shape[0], b.shape[0]), dtype=b.dtype, order=order or order_of(b))
    _gemm(1.0, a, 0, b, 1, 0.0, out)
    return out


def matmul_tn_acc(c: np.ndarray, x: np.ndarray, dy: np.ndarray, alpha: float = 1.0, beta: float = 0.0) -> None:
    """In place: c (D, M) ← β·c + α·xᵀ·dy, for x (N, D), dy (N, M): a weight gradient or update.

    ``c`` must be contiguous (either order).
    """
    _gemm(alpha, x, 1, dy, 0, beta, c)


def colsum(a: np.ndarray, out: np.ndarray) -> None:
    """In place: out (M,) ← Σ_n a[n, :] for a (N, M): a bias gradient, as the product aᵀ·1.

    A matrix-vector product on two threads: about 4× faster than
    ``np.add.reduce(a, axis=0)`` on a column-major array.
    """
    dt = a.dtype
    ones = _ONES.get((a.shape[0], dt))
    if ones is None:
        ones = _ONES[(a.shape[0], dt)] = np.ones(a.shape[0], dtype=dt)
        ones.flags.writeable = False
    if a.flags.f_contiguous:
        if _GEMV[dt](1.0, a, ones, 0.0, out, 0, 1, 0, 1, 1, 1) is not out:  # aᵀ·1
            _not_in_place()
    else:  # aᵀ is column-major (M, N)
        if _GEMV[dt](1.0, _like(a, dt, False).T, ones, 0.0, out, 0, 1, 0, 1, 0, 1) is not out:
            _not_in_place()


def tn_sqnorm(x: np.ndarray, dy: np.ndarray) -> float:
    """‖xᵀ·dy‖² (Frobenius) for x (N, D), dy (N, C), without forming the (D, C) product.

    ‖XᵀD‖² = tr(DᵀXXᵀD) = ⟨XXᵀ, DDᵀ⟩: two (N, N) Gram matrices, N²·(D + C)
    multiply-adds instead of N·D·C, and no (D, C) array written and read back.
    Worth it when N·(D + C) < D·C, i.e. batches smaller than the layer. Each Gram
    matrix is symmetric, so ``syrk`` computes only its upper triangle U (half the
    multiply-adds, though OpenBLAS's syrk runs at a lower rate than its gemm),
    and ⟨G, H⟩ = 2·⟨U_G, U_H⟩ − ⟨diag G, diag H⟩. The inner products are taken in
    float64.
    """
    dt = x.dtype
    grams = []
    for a in (x, dy):
        # a = op_t(m) with m column-major (_operand: no copy for either order), so a·aᵀ is syrk's m·mᵀ
        # (trans 0) or mᵀ·m (trans 1). The lower triangle stays 0.
        m, t = _operand(a, dt)
        n = a.shape[0]
        g = np.zeros((n, n), dtype=dt, order="F")
        if _SYRK[dt](1.0, m, 0.0, g, t, 0, 1) is not g:
            _not_in_place()
        grams.append(g)
    u0, u1 = (np.ravel(g, order="F").astype(np.float64) for g in grams)
    d0, d1 = (np.diagonal(g).astype(np.float64) for g in grams)
    # SciPy's BLAS, not np.vdot's: one thread pool (see above)
    return 2.0 * float(_DOT[u0.dtype](u0, u1)) - float(_DOT[d0.dtype](d0, d1))


def sqnorm(a: np.ndarray) -> float:
    """Σ a², for a contiguous float array of any shape."""
    if a.ndim == 1:  # a vector (a bias gradient, checked every step): no reshaping
        return float(_DOT[a.dtype](a, a))
    v = a.reshape(-1, order=order_of(a))
    return float(_DOT[v.dtype](v, v))


def axpy(alpha: float, x: np.ndarray, y: np.ndarray) -> None:
    """In place: y ← y + α·x, for contiguous arrays of one shape, dtype and memory order.

    One pass and no temporary, where ``y -= alpha * x`` makes a temporary array
    and takes two.
    """
    if x.ndim == 1 and x.shape == y.shape and x.dtype == y.dtype:
        # Vectors (biases): no reshaping. A strided y would come back as a copy,
        # which the identity test refuses; a strided x is copied by the wrapper.
        if _AXPY[y.dtype](x, y, x.size, alpha) is not y:
            _not_in_place()
        return
    if x.shape != y.shape or x.dtype != y.dtype or order_of(x) != order_of(y):
        raise ValueError("axpy needs two arrays of one shape, dtype and memory order")
    order = order_of(y)
    xv, yv = x.reshape(-1, order=order), y.reshape(-1, order=order)
    if _AXPY[y.dtype](xv, yv, xv.size, alpha) is not yv:
        _not_in_place()


def keep_mask(rng: np.random.Generator, shape: tuple[int, ...], p: float, order: Order = "C") -> np.ndarray:
    """A boolean array of ``shape``, True (keep) with probability 1 − p, each entry independent.

    Equivalent to ``rng.random(shape) >= p`` — a uniform draw u, kept when
    u ≥ p — with u drawn at the coarsest resolution that still represents p:
    one random bit per entry when p = 1/2, a byte when p is a multiple of
    1/256, 16 bits for a multiple of 2⁻¹⁶, and 32 bits otherwise. In the
    first three cases the drop probability is exactly p; with 32 bits it is
    p rounded to a multiple of 2⁻³² (at most 1.2e-10 off). Raw generator bytes
    are the cheapest source there is (docs/performance.md).
    """
    n = int(np.prod(shape))
    if p == 0.5:
        bits = np.unpackbits(np.frombuffer(rng.bytes((n + 7) // 8), dtype=np.uint8), count=n)
        return bits.reshape(shape, order=order).view(bool)  # 1 = keep, probability 1/2
    for nbytes, dtype in ((1, np.uint8), (2, np.uint16), (4, np.uint32)):
        levels = 1 << (8 * nbytes)
        if nbytes == 4 or float(p * levels).is_integer():
            threshold = min(round(p * levels), levels - 1)  # u < threshold, probability threshold / levels, drops
            raw: np.ndarray = np.frombuffer(rng.bytes(nbytes * n), dtype=dtype)
            return raw.reshape(shape, order=order) >= threshold
    raise AssertionError("unreachable")  # pragma: no cover


def mask_draw_bytes(n: int, p: float) -> int:
    """The generator bytes ``keep_mask`` draws for ``n`` entries at drop probability ``p`` (0 < p < 1): what a
    checkpoint's dropout generator state is replayed with (``training.checkpoints``)."""
    if p == 0.5:
        return (n + 7) // 8
    for nbytes in (1, 2):
        if float(p * (1 << (8 * nbytes))).is_integer():
            return nbytes * n
    return 4 * n


class LinearGrads(MutableMapping):
    """A Linear layer's ``grads``: ``"b"`` written by backward, ``"W"`` = xᵀ·dout formed when read.

    Backward keeps the two factors of the weight gradient, x (N, D) and dout
    (N, C), and the first read of ``grads["W"]`` multiplies them into the
    buffer (one GEMM). The optimizer can instead apply ``W ← βW + α·xᵀ·dout``
    straight from the factors (``factors()``) in one accumulating GEMM, without
    writing the gradient and reading it back: measured in ``docs/math.md``
    ("the training step"). Either way, reading ``grads["W"]`` after a step gives
    that step's gradient. The factors are the arrays backward received; they
    are not copied, so they must not be changed in place before the read.
    """

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        self._arrays = {"W": W, "b": b}
        self._factors: tuple[np.ndarray, np.ndarray] | None = None

    def factors(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(x, dout) with dW = xᵀ·dout while dW is not yet formed; None once it is."""
        return self._factors

    def set_factors(self, x: np.ndarray, dout: np.ndarray) -> None:
        self._factors = (x, dout)

    def __getitem__(self, key: str) -> np.ndarray:
        if key == "W" and self._factors is not None:
            x, dout = self._factors
            matmul_tn_acc(self._arrays["W"], x, dout)  # (D, N) @ (N, C) -> (D, C)
            self._factors = None
        return self._arrays[key]

    def __setitem__(self, key: str, value: np.ndarray) -> None:
        """Store a gradient as given; for ``"W"`` the pending factors are dropped, so it reads back as set."""
        if key not in self._arrays or value.shape != self._arrays[key].shape:
            raise ShapeError(f"Linear grads: cannot set {key!r} to an array of shape {value.shape}")
        if key == "W":
            self._factors = None
        self._arrays[key] = value

    def __delitem__(self, key: str) -> None:
        raise TypeError("Linear grads keep their keys")

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)
