"""Layers with hand-written forward and backward passes.

The contract every layer keeps (see docs/math.md for the derivations):

- ``params`` and ``grads`` are dicts with the same keys and shapes.
- ``forward(x)`` returns the output and caches exactly what ``backward`` needs.
- ``backward(dout)`` receives dL/d(out), *overwrites* ``grads`` and returns
  dL/dx. Calling it before ``forward`` raises :class:`StateError`.
- ``train()`` / ``eval()`` switch the mode; only Dropout behaves differently.
- Randomness comes only from the ``numpy.random.Generator`` a layer is given.

Shape letters: N batch, D input features, C output features.
"""

from __future__ import annotations

import numpy as np

from . import blas
from .errors import ShapeError, StateError
from .init import init_bias, init_weight


class Layer:
    """Base class: no parameters, train/eval mode, forward/backward contract."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.training = True

    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def train(self, mode: bool = True) -> Layer:
        self.training = mode
        return self

    def eval(self) -> Layer:
        return self.train(False)

    @property
    def num_params(self) -> int:
        return sum(p.size for p in self.params.values())

    def out_features(self, in_features: int) -> int:
        """Width of the output for an input of width ``in_features``."""
        return in_features

    def extra_repr(self) -> str:
        return ""

    def kink_pattern(self) -> np.ndarray | None:
        """Which side of each non-differentiable point the last forward fell on.

        None for smooth layers. Gradient checks compare it across a finite
        difference to skip entries whose ±eps step crosses a kink.
        """
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def _require(self, cached: np.ndarray | None) -> np.ndarray:
        if cached is None:
            raise StateError(f"{type(self).__name__}.backward() called before forward()")
        return cached


class Linear(Layer):
    """Fully connected layer: ``out = x @ W + b``.

    Args:
        in_features, out_features: widths D and C.
        rng: generator for the initial weights.
        init: weight initializer (see ``mlpkit.init``); ``init_std`` for ``normal``.
        bias_init, bias_std: ``zeros`` or ``normal`` (N(0, bias_std²)).
        dtype: float32 for training, float64 for gradient checks.

    Shape:
        x: (N, D) -> out: (N, C).  W: (D, C), b: (C,) — one bias per output
        unit, broadcast over the batch (not one per sample, as the seed notes had).
    Cache: x.
    Grads: W = xᵀ·dout (D, C); b = column sums of dout over the batch (C,).
    Constraint: with ``max_norm``, ``apply_max_norm`` rescales any column of W
    (a unit's incoming weights) whose L2 norm exceeds it (Srivastava et al. 2014).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rng: np.random.Generator,
        init: str = "xavier",
        init_std: float = 1.0,
        bias_init: str = "zeros",
        bias_std: float = 1.0,
        max_norm: float | None = None,
        dtype: np.dtype | type = np.float32,
    ) -> None:
        super().__init__()
        self.max_norm = max_norm
        self.in_features = in_features
        self._out_features = out_features
        W = init_weight(init, in_features, out_features, rng, std=init_std, dtype=dtype)
        b = init_bias(bias_init, out_features, rng, std=bias_std, dtype=dtype)
        self.params = {"W": W, "b": b}
        self.grads = {"W": np.zeros_like(W), "b": np.zeros_like(b)}
        self._x: np.ndarray | None = None
        self._dout: np.ndarray | None = None

    def out_features(self, in_features: int) -> int:
        return self._out_features

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ShapeError(
                f"Linear({self.in_features}, {self._out_features}) expects input of shape "
                f"(N, {self.in_features}), got {x.shape}"
            )
        self._x = x
        return blas.matmul(x, self.params["W"], bias=self.params["b"])  # (N, D) @ (D, C) + b -> (N, C)

    def backward(self, dout: np.ndarray, *, need_dx: bool = True, defer_dW: bool = False) -> np.ndarray | None:
        """Write dW, db; return dx unless ``need_dx`` is False (first layer).

        With ``defer_dW`` the weight gradient is not formed: ``dout`` is kept for
        ``accumulate_dW``, which lets the optimizer fold it into its update.
        """
        x = self._require(self._x)
        if defer_dW:
            self._dout = dout
        else:
            blas.matmul_tn_acc(self.grads["W"], x, dout)  # (D, N) @ (N, C) -> (D, C)
        blas.colsum(dout, self.grads["b"])  # (C,): sum over the batch
        if not need_dx:
            return None
        return blas.matmul_nt(dout, self.params["W"])  # (N, C) @ (C, D) -> (N, D)

    def apply_max_norm(self) -> None:
        """Rescale each unit's incoming weights (a column of W) to norm ≤ max_norm, if set."""
        if self.max_norm is None:
            return
        W = self.params["W"]
        norms = np.sqrt(np.einsum("ij,ij->j", W, W))  # (C,) column norms, no temporary (D, C) array
        over = np.flatnonzero(norms > self.max_norm)
        if over.size:
            W[:, over] *= (self.max_norm / norms[over]).astype(W.dtype)

    def accumulate_dW(self, target: np.ndarray, alpha: float, beta: float) -> None:
        """target ← β·target + α·xᵀ·dout, from the last deferred backward (one GEMM)."""
        x, dout = self._require(self._x), self._require(self._dout)
        blas.matmul_tn_acc(target, x, dout, alpha, beta)

    def dW_sqnorm(self, scratch: np.ndarray) -> float:
        """‖xᵀ·dout‖² from the last deferred backward, without changing the weights.

        For batches smaller than the layer, from (N, N) Gram matrices
        (``blas.tn_sqnorm``); otherwise the product is formed in ``scratch`` (D, C).
        """
        x, dout = self._require(self._x), self._require(self._dout)
        n, (d, c) = x.shape[0], self.params["W"].shape
        if n * (d + c) < d * c:
            return blas.tn_sqnorm(x, dout)
        blas.matmul_tn_acc(scratch, x, dout)
        return blas.sqnorm(scratch.ravel(order="A"))  # a view: scratch is contiguous

    def extra_repr(self) -> str:
        extra = f", max_norm={self.max_norm:g}" if self.max_norm is not None else ""
        return f"{self.in_features}, {self._out_features}{extra}"


class Sigmoid(Layer):
    """Logistic sigmoid ``out = 1 / (1 + exp(-x))``.

    Computed as ``0.5 * tanh(0.5 * x) + 0.5``: the same function, never
    overflows (exp(-x) does for x < -88 in float32) and is cheaper.

    Shape: any -> same.  Cache: out.
    Backward: dx = dout · out · (1 − out), which is at most dout / 4.
    """

    def __init__(self) -> None:
        super().__init__()
        self._out: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        out = np.multiply(x, 0.5, dtype=x.dtype)
        np.tanh(out, out=out)
        out *= 0.5
        out += 0.5
        self._out = out
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        out = self._require(self._out)
        dx = 1.0 - out  # (1 - y)
        dx *= out  # y (1 - y) = σ'(s)
        dx *= dout
        return dx

    def derivative(self) -> np.ndarray:
        """σ'(s) = y (1 − y) at the last forward, elementwise (at most 1/4)."""
        out = self._require(self._out)
        return out * (1.0 - out)


class Tanh(Layer):
    """Hyperbolic tangent.  Cache: out.  Backward: dx = dout · (1 − out²)."""

    def __init__(self) -> None:
        super().__init__()
        self._out: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._out = np.tanh(x)
        return self._out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        out = self._require(self._out)
        dx = out * out
        np.subtract(1.0, dx, out=dx)
        dx *= dout
        return dx

    def derivative(self) -> np.ndarray:
        """tanh'(s) = 1 − y² at the last forward, elementwise (at most 1)."""
        out = self._require(self._out)
        return 1.0 - out * out


class ReLU(Layer):
    """Rectified linear unit ``max(x, 0)``.

    Cache: out.  Backward: dx = dout where out > 0, else 0 (the kink at 0
    takes the subgradient 0, as PyTorch does).
    """

    def __init__(self) -> None:
        super().__init__()
        self._out: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._out = np.maximum(x, 0)
        return self._out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        out = self._require(self._out)
        return np.where(out > 0, dout, 0).astype(dout.dtype, copy=False)

    def kink_pattern(self) -> np.ndarray | None:
        return None if self._out is None else self._out > 0

    def derivative(self) -> np.ndarray:
        """1 where the unit was active at the last forward, else 0."""
        return (self._require(self._out) > 0).astype(self._out.dtype)


class Dropout(Layer):
    """Inverted dropout.

    Args:
        p: probability of *dropping* a unit (PyTorch/Keras convention; the seed
           notes and cs231n-2019 use p as the keep probability). Must be in [0, 1).
        rng: generator the masks are drawn from.

    Training: mask ~ Bernoulli(1 − p); out = x · mask / (1 − p), so E[out] = x.
    Inference: out = x, no rescaling needed.

    Masks come from the generator's raw random bytes, the cheapest source:
    one bit per unit when p = 1/2, one byte when p is a multiple of 1/256,
    otherwise two bytes, so p is used rounded to a multiple of 2⁻¹⁶ (at most
    7.6e-6 off; ``p_effective``). Survivors are scaled by 1/(1 − p_effective),
    which keeps E[out] = x exactly.

    Shape: any -> same.  Cache: the scaled mask (training mode only).
    Backward: dx = dout · mask / (1 − p) in training mode, dout in inference.
    """

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator) -> None:
        super().__init__()
        if not (isinstance(p, (int, float)) and not isinstance(p, bool) and 0.0 <= p < 1.0):
            raise ValueError(f"dropout probability has to be in [0, 1), but got {p!r}")
        self.p = float(p)
        self.rng = rng
        if self.p == 0.5:
            self._bits, self._threshold = 1, 1
        elif float(self.p * 256).is_integer():
            self._bits, self._threshold = 8, int(self.p * 256)
        else:
            self._bits, self._threshold = 16, min(int(round(self.p * 65536)), 65535)
        self.p_effective = self._threshold / (1 << self._bits) if self.p else 0.0
        self._scale = 1.0 / (1.0 - self.p_effective)
        self._mask: np.ndarray | None = None
        self._eval_cached = False

    def _keep(self, shape: tuple[int, ...], order: str = "C") -> np.ndarray:
        """A 0/1 array of ``shape``: 1 with probability 1 − p_effective."""
        n = int(np.prod(shape))
        if self._bits == 1:
            raw = np.frombuffer(self.rng.bytes((n + 7) // 8), dtype=np.uint8)
            return np.unpackbits(raw, count=n).reshape(shape, order=order)
        if self._bits == 8:
            return np.frombuffer(self.rng.bytes(n), dtype=np.uint8).reshape(shape, order=order) >= self._threshold
        raw16 = np.frombuffer(self.rng.bytes(2 * n), dtype=np.uint16)
        return raw16.reshape(shape, order=order) >= self._threshold

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0.0:
            self._mask, self._eval_cached = None, True
            return x
        order = "F" if x.flags.f_contiguous and not x.flags.c_contiguous else "C"  # the mask follows x's layout
        mask = np.multiply(self._keep(x.shape, order), self._scale, dtype=x.dtype)  # 0 or 1/(1-p)
        self._mask, self._eval_cached = mask, False
        return x * mask

    @property
    def mask(self) -> np.ndarray | None:
        """The scaled mask (0 or 1/(1−p)) of the last training-mode forward; None otherwise."""
        return self._mask

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self._mask is None:
            if not self._eval_cached:
                raise StateError("Dropout.backward() called before forward()")
            return dout
        return dout * self._mask

    def extra_repr(self) -> str:
        return f"p={self.p:g}"
