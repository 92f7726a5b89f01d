"""``model.backend: reference``: the layers, head and optimizer of the fast path, computed by the textbook
functions of ``nn.reference`` instead. Slower, the same numbers to float rounding (tested over an epoch), and
code a learner can step through in a debugger: set a breakpoint in ``reference.linear_backward``.

Each class keeps its fast parent's contract (``params``, ``grads``, train/eval, the random stream), so the
trainer, checkpoints, gradcheck and the reports work unchanged. Dropout draws its mask from the same generator
with the same draws (``keep_mask``), so both backends drop the same units.
"""

from __future__ import annotations

import numpy as np

from mlpkit.nn import reference as R
from mlpkit.nn._kernels import Order, keep_mask
from mlpkit.nn.layers import Dropout, Layer, Linear, ReLU, Sigmoid, Tanh
from mlpkit.nn.losses import SoftmaxCrossEntropy
from mlpkit.nn.model import MLP
from mlpkit.nn.optim import SGD


class ReferenceLinear(Linear):
    """Linear through ``reference.linear_forward`` / ``linear_backward``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise self._shape_error(x)
        out, self._cache = R.linear_forward(x, self.params["W"], self.params["b"])
        self._x = x
        return out

    def backward(self, dout: np.ndarray, *, need_dx: bool = True) -> np.ndarray | None:
        self._require(self._x)
        dx, dW, db = R.linear_backward(dout, self._cache)
        self.grads["W"] = dW.astype(self.params["W"].dtype, copy=False)
        self.grads["b"] = db.astype(self.params["b"].dtype, copy=False)
        return dx if need_dx else None

    def grad_sqnorm(self, key: str) -> float:
        g = self.grads[key]
        return float((g.astype(np.float64) ** 2).sum())


class ReferenceSigmoid(Sigmoid):
    def forward(self, x: np.ndarray) -> np.ndarray:
        out, self._out = R.sigmoid_forward(x)
        return out

    def backward(self, dout: np.ndarray, *, need_dx: bool = True) -> np.ndarray | None:
        out = self._require(self._out)
        return R.sigmoid_backward(dout, out) if need_dx else None


class ReferenceTanh(Tanh):
    def forward(self, x: np.ndarray) -> np.ndarray:
        out, self._out = R.tanh_forward(x)
        return out

    def backward(self, dout: np.ndarray, *, need_dx: bool = True) -> np.ndarray | None:
        out = self._require(self._out)
        return R.tanh_backward(dout, out) if need_dx else None


class ReferenceReLU(ReLU):
    def forward(self, x: np.ndarray) -> np.ndarray:
        out, self._out = R.relu_forward(x)
        return out

    def backward(self, dout: np.ndarray, *, need_dx: bool = True) -> np.ndarray | None:
        out = self._require(self._out)
        return R.relu_backward(dout, out) if need_dx else None


class ReferenceDropout(Dropout):
    """Dropout through ``reference.dropout_forward`` / ``dropout_backward``; ``mask_order`` is the memory order
    the fast model's activations would have, so that the same generator bytes give the same mask."""

    def __init__(self, p: float = 0.5, *, rng: np.random.Generator, mask_order: Order = "C") -> None:
        super().__init__(p, rng=rng)
        self.mask_order = mask_order
        self._keep: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        keep = None
        if self.training and self.p > 0.0:
            keep = keep_mask(self.rng, x.shape, self.p, self.mask_order).astype(x.dtype)
        out, self._keep = R.dropout_forward(x, keep, self.p)
        self._mask = None if keep is None else keep / (1.0 - self.p)  # what ``Dropout.mask`` reports
        self._eval_cached = keep is None
        return out

    def backward(self, dout: np.ndarray, *, need_dx: bool = True) -> np.ndarray | None:
        if self._mask is None and not self._eval_cached:
            super().backward(dout)  # raises: backward before forward
        return R.dropout_backward(dout, self._keep, self.p) if need_dx else None


class ReferenceSoftmaxCrossEntropy(SoftmaxCrossEntropy):
    """The head through ``reference.softmax_cross_entropy``."""

    def forward(self, logits: np.ndarray, y: np.ndarray) -> float:
        loss, self._dlogits = R.softmax_cross_entropy(logits, y)
        return loss

    __call__ = forward


class ReferenceSGD(SGD):
    """SGD through ``reference.sgd_step``: the parameters, gradients and velocities as dicts by name."""

    def step(self) -> None:
        params = {name: layer.params[key] for name, layer, key in self.params}
        grads = {name: layer.grads[key] for name, layer, key in self.params}
        velocity = self.velocity if self.momentum else {}  # without momentum no velocity is kept (as the fast SGD)
        for name, p in params.items():
            velocity.setdefault(name, np.zeros_like(p))
        caps = {f"layers.{i}.W": layer.max_norm for i, layer in enumerate(self._model_layers)
                if isinstance(layer, Linear) and layer.max_norm is not None}
        new = R.sgd_step(params, grads, velocity, self.lr, self.momentum, self.weight_decay, caps)
        for name, layer, key in self.params:
            layer.params[key][...] = new[name]  # in place: the arrays the model and the checkpoints hold

    def __init__(self, model: MLP, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__(model, lr, momentum, weight_decay)
        self._model_layers = model.layers


REFERENCE_CLASSES: dict[type[Layer], type[Layer]] = {
    Linear: ReferenceLinear, Sigmoid: ReferenceSigmoid, Tanh: ReferenceTanh, ReLU: ReferenceReLU,
    Dropout: ReferenceDropout,
}
