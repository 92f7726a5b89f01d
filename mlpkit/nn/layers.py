"""Layers with hand-written forward and backward passes. The textbook version, to read first: nn/reference.py.

The contract every layer keeps (see docs/math.md for the derivations):

- ``params`` and ``grads`` are dicts with the same keys and shapes.
- ``forward(x)`` returns the output and caches exactly what ``backward`` needs.
- ``backward(dout, *, need_dx=True)`` receives dL/d(out), *overwrites*
  ``grads`` and returns dL/dx; with ``need_dx=False`` it returns None and may
  skip that product (nobody reads the gradient of the input images). Calling it
  before ``forward`` raises :class:`StateError`. After a training step
  ``grads`` hold that step's gradients: the optimizer reads them and never
  changes them.
- ``train()`` / ``eval()`` switch the mode; only Dropout behaves differently.
- Randomness comes only from the ``numpy.random.Generator`` a layer is given.

Shape letters: N batch, D input features, C output features.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass

import numpy as np

from mlpkit.errors import ShapeError, StateError
from mlpkit.nn import _kernels as kernels
from mlpkit.nn._kernels import LinearGrads, Order, keep_mask
from mlpkit.nn.init import init_bias, init_weight


class Layer:
    """Base class: no parameters, train/eval mode, forward/backward contract."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: MutableMapping[str, np.ndarray] = {}
        self.training = True

    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dout: np.ndarray, *, need_dx: bool = True) -> np.ndarray | None:  # pragma: no cover
        """dL/dx for dL/d(out) ``dout``, after writing ``grads``; None when ``need_dx`` is False."""
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

    def grad_sqnorm(self, key: str) -> float:
        """‖grads[key]‖² (Frobenius), for the gradient-norm diagnostics."""
        return kernels.sqnorm(self.grads[key])

    def apply_constraints(self) -> None:
        """Constraints on the parameters, applied by the optimizer after each update (none here)."""

    def derivative(self) -> np.ndarray:
        """An activation's elementwise derivative d(out)/dx at the last forward (activations only)."""
        raise TypeError(f"{type(self).__name__} is not an elementwise activation")

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
        init: weight initializer (see ``mlpkit.nn.init``); ``init_std`` for ``normal``.
        bias_init, bias_std: ``zeros`` or ``normal`` (N(0, bias_std²)).
        max_norm: cap on each unit's incoming weight norm (see ``apply_constraints``).
        dtype: float32 for training, float64 for gradient checks.
        order: memory order of W, "F" (column-major) or "C" (see ``_kernels``, ``training.build.weight_order``).
        out_order: memory order of the layer's outputs and input gradients (the activations'); by
            default W's.

    Shape:
        x: (N, D) -> out: (N, C).  W: (D, C), b: (C,) — one bias per output
        unit, broadcast over the batch (not one per sample, as the seed notes had).
    Cache: x.
    Grads: W = xᵀ·dout (D, C); b = column sums of dout over the batch (C,).
    """

    grads: LinearGrads  # dW kept as its factors until read (see LinearGrads)

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
        order: Order = "C",
        out_order: Order | None = None,
    ) -> None:
        super().__init__()
        self.max_norm = max_norm
        self.in_features = in_features
        self._out_features = out_features
        W = init_weight(init, in_features, out_features, rng, std=init_std, dtype=dtype)
        W = np.asfortranarray(W) if order == "F" else np.ascontiguousarray(W)
        b = init_bias(bias_init, out_features, rng, std=bias_std, dtype=dtype)
        self.params = {"W": W, "b": b}
        self.grads = LinearGrads(np.zeros_like(W), np.zeros_like(b))  # zeros_like keeps W's order
        self.out_order = out_order or order
        self._x: np.ndarray | None = None

    def out_features(self, in_features: int) -> int:
        return self._out_features

    def _shape_error(self, x: np.ndarray) -> ShapeError:
        return ShapeError(f"Linear({self.in_features}, {self._out_features}) expects input of shape "
                          f"(N, {self.in_features}), got {x.shape}")

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise self._shape_error(x)
        self._x = x
        # (N, D) @ (D, C) + b -> (N, C)
        return kernels.matmul(x, self.params["W"], bias=self.params["b"], order=self.out_order)

    def backward(self, dout: np.ndarray, *, need_dx: bool = True) -> np.ndarray | None:
        """Write dW = xᵀ·dout and db = Σ_n dout; return dx = dout·Wᵀ unless ``need_dx`` is False.

        dW is kept as its two factors and formed when ``grads["W"]`` is read
        (see ``LinearGrads``). The first layer of a network passes
        ``need_dx=False``: nobody reads the gradient of the input images.
        """
        x = self._require(self._x)
        self.grads.set_factors(x, dout)  # dW = xᵀ·dout: (D, N) @ (N, C) -> (D, C)
        kernels.colsum(dout, self.grads["b"])  # (C,): sum over the batch
        if not need_dx:
            return None
        return kernels.matmul_nt(dout, self.params["W"], self.out_order)  # (N, C) @ (C, D) -> (N, D)

    def grad_sqnorm(self, key: str) -> float:
        """‖grads[key]‖², without forming dW when the batch is smaller than the layer.

        Then ‖xᵀ·dout‖² comes from two (N, N) Gram matrices (``kernels.tn_sqnorm``),
        N²·(D + C) multiply-adds instead of N·D·C.
        """
        factors = self.grads.factors() if key == "W" else None
        if factors is not None:
            x, dout = factors
            n, (d, c) = x.shape[0], self.params["W"].shape
            if n * (d + c) < d * c:
                return kernels.tn_sqnorm(x, dout)
        return kernels.sqnorm(self.grads[key])

    def apply_constraints(self) -> None:
        """Max-norm (Srivastava et al. 2014): rescale each unit's incoming weights, a
        column of W, whose L2 norm exceeds ``max_norm`` down to that norm."""
        if self.max_norm is None:
            return
        W = self.params["W"]
        norms = np.sqrt(np.einsum("ij,ij->j", W, W))  # (C,) column norms, no temporary (D, C) array
        over = np.flatnonzero(norms > self.max_norm)
        if over.size:
            W[:, over] *= (self.max_norm / norms[over]).astype(W.dtype)

    def extra_repr(self) -> str:
        extra = f", max_norm={self.max_norm:g}" if self.max_norm is not None else ""
        return f"{self.in_features}, {self._out_features}{extra}"


_HALF = {np.dtype(t): t(0.5) for t in (np.float32, np.float64)}


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
        # 0.5 as a scalar of x's dtype, made once: a Python float would be converted in each of the three calls
        half = _HALF.get(x.dtype) or x.dtype.type(0.5)
        out = np.multiply(x, half)
        np.tanh(out, out=out)
        out *= half
        out += half
        self._out = out
        return out

    def backward(self, dout: np.ndarray, *, need_dx: bool = True) -> np.ndarray | None:
        out = self._require(self._out)
        if not need_dx:
            return None
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

    def backward(self, dout: np.ndarray, *, need_dx: bool = True) -> np.ndarray | None:
        out = self._require(self._out)
        if not need_dx:
            return None
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

    def backward(self, dout: np.ndarray, *, need_dx: bool = True) -> np.ndarray | None:
        out = self._require(self._out)
        if not need_dx:
            return None
        return np.where(out > 0, dout, 0).astype(dout.dtype, copy=False)

    def kink_pattern(self) -> np.ndarray | None:
        return None if self._out is None else self._out > 0

    def derivative(self) -> np.ndarray:
        """1 where the unit was active at the last forward, else 0."""
        out = self._require(self._out)
        return (out > 0).astype(out.dtype)


class Dropout(Layer):
    """Inverted dropout.

    Args:
        p: probability of *dropping* a unit (PyTorch/Keras convention; the seed
           notes and cs231n-2019 use p as the keep probability). Must be in [0, 1).
        rng: generator the masks are drawn from (see ``keep_mask``).

    Training: mask ~ Bernoulli(1 − p); out = x · mask / (1 − p), so E[out] = x.
    Inference: out = x, no rescaling needed.

    Shape: any -> same.  Cache: the scaled mask, 0 or 1/(1 − p) (training mode only).
    Backward: dx = dout · mask / (1 − p) in training mode, dout in inference.
    """

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator) -> None:
        super().__init__()
        if not (isinstance(p, (int, float)) and not isinstance(p, bool) and 0.0 <= p < 1.0):
            raise ValueError(f"dropout probability has to be in [0, 1), but got {p!r}")
        self.p = float(p)
        self.rng = rng
        self.scale = 1.0 / (1.0 - self.p)  # survivors' factor, exactly as the user's p gives it
        self._mask: np.ndarray | None = None
        self._eval_cached = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0.0:
            self._mask, self._eval_cached = None, True
            return x
        keep = keep_mask(self.rng, x.shape, self.p, kernels.order_of(x))  # the mask follows x's layout
        mask = np.multiply(keep, self.scale, dtype=x.dtype)  # 0 or 1/(1-p)
        self._mask, self._eval_cached = mask, False
        return x * mask

    @property
    def mask(self) -> np.ndarray | None:
        """The scaled mask (0 or 1/(1−p)) of the last training-mode forward; None otherwise."""
        return self._mask

    def backward(self, dout: np.ndarray, *, need_dx: bool = True) -> np.ndarray | None:
        if self._mask is None and not self._eval_cached:
            raise StateError("Dropout.backward() called before forward()")
        if not need_dx:
            return None
        return dout if self._mask is None else dout * self._mask

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


# -- the layer registry ----------------------------------------------------------
@dataclass(frozen=True)
class LayerKind:
    """Everything mlpkit knows about one kind of layer, so that a new layer touches this file only.

    Attributes:
        name: its name in a config (``- sigmoid``, ``- linear: 100``).
        cls: the class.
        role: "linear" (has weights), "activation" (elementwise, has ``derivative()``) or "dropout".
        options: the config options of its long form; the first is also its short form's value.
        onnx_op: the ONNX operator at inference; None for the identity (left out of the graph).
        derivative_bound: what bounds the activation's derivative, for inspect-grads' reading.
    """

    name: str
    cls: type[Layer]
    role: str
    options: tuple[str, ...] = ()
    onnx_op: str | None = None
    derivative_bound: str = ""


LAYERS: dict[str, LayerKind] = {
    k.name: k for k in (
        LayerKind("linear", Linear, "linear", ("out_features", "init", "init_std", "bias_init", "bias_std", "max_norm"),
                  "Gemm"),
        LayerKind("sigmoid", Sigmoid, "activation", onnx_op="Sigmoid", derivative_bound="σ′ ≤ 1/4"),
        LayerKind("relu", ReLU, "activation", onnx_op="Relu", derivative_bound="ReLU′ ∈ {0, 1}"),
        LayerKind("tanh", Tanh, "activation", onnx_op="Tanh", derivative_bound="tanh′ ≤ 1"),
        LayerKind("dropout", Dropout, "dropout", ("p",)),
    )
}
_BY_CLASS = {k.cls: k for k in LAYERS.values()}


def kind_of(layer: Layer) -> LayerKind:
    """The registry entry of a layer object (of a registered class or a subclass, e.g. the textbook backend's)."""
    for cls in type(layer).__mro__:
        if cls in _BY_CLASS:
            return _BY_CLASS[cls]
    raise KeyError(type(layer).__name__)


def activations() -> list[LayerKind]:
    """The registered elementwise activations, in registry order."""
    return [k for k in LAYERS.values() if k.role == "activation"]
