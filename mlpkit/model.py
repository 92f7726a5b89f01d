"""The multilayer perceptron: a stack of layers and a softmax-CE head."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import MAX_PARAMS, ModelConfig
from .errors import ConfigError
from .layers import Dropout, Layer, Linear, ReLU, Sigmoid, Tanh
from .losses import SoftmaxCrossEntropy

_ACTIVATIONS = {"sigmoid": Sigmoid, "relu": ReLU, "tanh": Tanh}


class MLP:
    """A sequence of layers ending in logits, with a softmax-cross-entropy head.

    Parameters are named ``layers.{i}.{W|b}`` by the layer's index in the stack.

    Shape: x (N, D) -> logits (N, C).
    """

    def __init__(self, layers: list[Layer], in_features: int, layout: str = "F") -> None:
        self.layers = layers
        self.in_features = in_features
        self.head = SoftmaxCrossEntropy()
        self.training = True
        self.layout = layout  # memory order of weights and activations: "F" (column-major) or "C"
        self.flat = FlatParams.adopt(self.named_params(), self.layers, order=layout)
        self._first_param_layer = next((i for i, layer in enumerate(layers) if layer.params), 0)

    # -- modes ---------------------------------------------------------------
    def train(self, mode: bool = True) -> MLP:
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self) -> MLP:
        return self.train(False)

    # -- passes --------------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """Logits (N, C) for inputs (N, D)."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    __call__ = forward

    def loss(self, x: np.ndarray, y: np.ndarray) -> float:
        """Forward through the head: mean softmax-CE of the batch."""
        return self.head.forward(self.forward(x), y)

    def backward(self, *, need_dx: bool = False, scale: float = 1.0, defer_dW: bool = False) -> np.ndarray | None:
        """Backpropagate from the head; writes every layer's grads.

        Returns dL/dx (N, D) when ``need_dx``; otherwise the first Linear layer
        skips that product, which nobody reads during training. With ``scale``
        every gradient is multiplied by it (backpropagation is linear in the
        upstream gradient, so scaling the (N, C) logits gradient is enough):
        the optimizer folds its learning rate in here instead of making a pass
        over all the parameters. With ``defer_dW`` the Linear layers keep their
        upstream gradient instead of forming dW (see ``SGD.step_fused``).
        """
        dout = self.head.backward()
        if scale != 1.0:
            dout = dout * dout.dtype.type(scale)
        last = len(self.layers) - 1
        # Below the first layer with parameters (e.g. an input Dropout) nothing needs a gradient.
        stop = 0 if need_dx else self._first_param_layer
        for i in range(last, stop - 1, -1):
            layer = self.layers[i]
            if isinstance(layer, Linear):
                dout = layer.backward(dout, need_dx=need_dx or i > stop, defer_dW=defer_dW)
                if dout is None:
                    return None
            else:
                dout = layer.backward(dout)
        return dout

    def apply_constraints(self) -> None:
        """Max-norm constraints of the Linear layers, after an update."""
        for _, layer in self.linear_layers():
            layer.apply_max_norm()

    # -- parameters ----------------------------------------------------------
    def named_params(self) -> dict[str, np.ndarray]:
        return {f"layers.{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    def named_grads(self) -> dict[str, np.ndarray]:
        return {f"layers.{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()}

    def linear_layers(self) -> list[tuple[int, Linear]]:
        return [(i, layer) for i, layer in enumerate(self.layers) if isinstance(layer, Linear)]

    def dropout_layers(self) -> list[tuple[int, Dropout]]:
        return [(i, layer) for i, layer in enumerate(self.layers) if isinstance(layer, Dropout)]

    @property
    def num_params(self) -> int:
        return sum(layer.num_params for layer in self.layers)

    @property
    def dtype(self) -> np.dtype:
        return self.flat.data.dtype

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        """Copy arrays into the model's parameters (names and shapes must match)."""
        own = self.named_params()
        for name, arr in own.items():
            arr[...] = params[name]

    def summary(self) -> list[tuple[str, str, str, int]]:
        """Rows of (index, layer, output shape, parameter count)."""
        rows = []
        width = self.in_features
        for i, layer in enumerate(self.layers):
            width = layer.out_features(width)
            rows.append((str(i), repr(layer), f"(N, {width})", layer.num_params))
        return rows

    def __repr__(self) -> str:
        inner = ",\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"MLP(\n{inner}\n) -> {self.head!r}, {self.num_params:,} parameters"


class FlatParams:
    """Every parameter of a model in one contiguous array, and every gradient in another.

    Each layer's ``params``/``grads`` entries become views into these, so an
    optimizer updates all of them with a few whole-array operations, however
    many layers there are.

    Attributes:
        data, grad: 1-D arrays of all parameters / gradients, in model order.
        slices: name -> slice of ``data``; shapes: name -> shape.
        weight_slices: the slices of weight matrices (weight decay skips biases).
    """

    def __init__(self, data: np.ndarray, grad: np.ndarray, slices: dict[str, slice],
                 shapes: dict[str, tuple[int, ...]], order: str = "F") -> None:
        self.data, self.grad, self.slices, self.shapes, self.order = data, grad, slices, shapes, order
        self.names = list(slices)
        self.weight_slices = _merge([sl for n, sl in slices.items() if n.endswith(".W")])

    @classmethod
    def adopt(cls, named: dict[str, np.ndarray], layers: list[Layer] | None = None, order: str = "F") -> FlatParams:
        """Copy ``named`` arrays into flat storage and point ``layers``' dicts at views of it."""
        dtype = next(iter(named.values())).dtype if named else np.dtype(np.float32)
        total = sum(a.size for a in named.values())
        data, grad = np.empty(total, dtype=dtype), np.zeros(total, dtype=dtype)
        slices, shapes, pos = {}, {}, 0
        # Weights first, then biases: weight decay then touches one contiguous run.
        names = sorted(named, key=lambda n: not n.endswith(".W"))
        for name in names:
            a = named[name]
            slices[name] = slice(pos, pos + a.size)
            shapes[name] = a.shape
            data[slices[name]] = a.ravel(order=order)
            pos += a.size
        flat = cls(data, grad, slices, shapes, order)
        for i, layer in enumerate(layers or []):
            for k in layer.params:
                name = f"layers.{i}.{k}"
                layer.params[k] = flat.view(name)
                layer.grads[k] = flat.grad_view(name)
        return flat

    # Matrices are stored in ``order``: column-major unless batches are small (see blas.py).
    def view(self, name: str) -> np.ndarray:
        return self.data[self.slices[name]].reshape(self.shapes[name], order=self.order)

    def grad_view(self, name: str) -> np.ndarray:
        return self.grad[self.slices[name]].reshape(self.shapes[name], order=self.order)


def _merge(slices: list[slice]) -> list[slice]:
    """Adjacent slices joined, so that each contiguous run costs one operation."""
    out: list[slice] = []
    for sl in sorted(slices, key=lambda s: s.start):
        if out and out[-1].stop == sl.start:
            out[-1] = slice(out[-1].start, sl.stop)
        else:
            out.append(sl)
    return out


@dataclass(frozen=True)
class Rngs:
    """The independent random streams of a run, all spawned from the config seed."""

    init: np.random.Generator
    shuffle: np.random.Generator
    dropout: np.random.Generator

    @classmethod
    def from_seed(cls, seed: int) -> Rngs:
        a, b, c = np.random.SeedSequence(seed).spawn(3)
        return cls(np.random.default_rng(a), np.random.default_rng(b), np.random.default_rng(c))


def count_params(cfg: ModelConfig, in_features: int) -> int:
    """Parameters the config would allocate, computed before allocating."""
    total, width = 0, in_features
    for spec in cfg.layers:
        if spec.type == "linear":
            total += width * spec.out_features + spec.out_features
            width = spec.out_features
    return total


def summarize_config(cfg: ModelConfig, in_features: int) -> list[tuple[str, str, str, int]]:
    """The rows ``MLP.summary`` would give, without allocating the model."""
    rows, width = [], in_features
    for i, spec in enumerate(cfg.layers):
        if spec.type == "linear":
            rows.append((str(i), f"Linear({width}, {spec.out_features})", f"(N, {spec.out_features})",
                         width * spec.out_features + spec.out_features))
            width = spec.out_features
        elif spec.type == "dropout":
            rows.append((str(i), f"Dropout(p={spec.p:g})", f"(N, {width})", 0))
        else:
            rows.append((str(i), f"{_ACTIVATIONS[spec.type].__name__}()", f"(N, {width})", 0))
    return rows


def check_size(cfg: ModelConfig, in_features: int) -> int:
    """The parameter count, refused above MAX_PARAMS before anything is allocated."""
    n = count_params(cfg, in_features)
    if n > MAX_PARAMS:
        raise ConfigError(
            f"model.layers: the network would have {n:,} parameters for {in_features} inputs; "
            f"at most {MAX_PARAMS:,} are allowed"
        )
    return n


def build_model(
    cfg: ModelConfig,
    in_features: int,
    rng: np.random.Generator,
    dropout_rng: np.random.Generator | None = None,
    *,
    dtype: str | None = None,
    layout: str = "F",
) -> MLP:
    """Build the MLP a ModelConfig describes.

    Args:
        in_features: input width D, inferred from the data.
        rng: draws the initial weights.
        dropout_rng: draws the dropout masks (shared by all Dropout layers).
        dtype: overrides ``cfg.dtype`` (gradcheck uses float64).
        layout: memory order of weights and activations, "F" or "C" (see ``layout_for``).
    """
    check_size(cfg, in_features)
    dt = np.dtype(dtype or cfg.dtype)
    drng = dropout_rng if dropout_rng is not None else rng
    layers: list[Layer] = []
    width = in_features
    last_linear = max(i for i, sp in enumerate(cfg.layers) if sp.type == "linear")
    for i, spec in enumerate(cfg.layers):
        if spec.type == "linear":
            # model.max_norm constrains hidden units (Srivastava et al.); a layer's own max_norm wins.
            max_norm = spec.max_norm if spec.max_norm is not None else (cfg.max_norm if i != last_linear else None)
            layers.append(
                Linear(
                    width,
                    spec.out_features,
                    rng=rng,
                    init=spec.init or cfg.init,
                    init_std=spec.init_std if spec.init_std is not None else cfg.init_std,
                    bias_init=spec.bias_init or cfg.bias_init,
                    bias_std=spec.bias_std if spec.bias_std is not None else cfg.bias_std,
                    max_norm=max_norm,
                    dtype=dt,
                )
            )
            width = spec.out_features
        elif spec.type == "dropout":
            layers.append(Dropout(spec.p, rng=drng))
        else:
            layers.append(_ACTIVATIONS[spec.type]())
    return MLP(layers, in_features, layout)


def layout_for(batch_size: int) -> str:
    """The memory order BLAS is fastest with for this batch size (measured; see blas.py)."""
    return "F" if batch_size >= 16 else "C"
