"""The multilayer perceptron: a stack of layers and a softmax-cross-entropy head.

Pure math: it knows nothing of configs, files or screens. ``mlpkit.training.build``
makes one from a config.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from mlpkit.nn._kernels import Order
from mlpkit.nn.layers import Dropout, Layer, Linear
from mlpkit.nn.losses import SoftmaxCrossEntropy


class MLP:
    """A sequence of layers ending in logits, with a softmax-cross-entropy head.

    Parameters are named ``layers.{i}.{W|b}`` by the layer's index in the stack.

    Args:
        layers: the stack, input to logits.
        in_features: input width D.
        layout: memory order of weights and activations, "F" (column-major) or
            "C"; the trainer converts its batches to it (see ``nn._kernels``).
        head: the loss head (default the fast softmax-CE; the textbook backend passes its own).

    Shape: x (N, D) -> logits (N, C).
    """

    def __init__(self, layers: list[Layer], in_features: int, layout: Order = "C",
                 head: SoftmaxCrossEntropy | None = None) -> None:
        self.layers = layers
        self.in_features = in_features
        self.head = head or SoftmaxCrossEntropy()
        self.training = True
        self.layout = layout
        self._first_param_layer = next((i for i, layer in enumerate(layers) if layer.params), 0)
        # The stack never changes after construction: its parameter list is built once, not per step.
        self._parameters = tuple((f"layers.{i}.{k}", layer, k) for i, layer in enumerate(layers) for k in layer.params)

    # -- modes ---------------------------------------------------------------
    def train(self, mode: bool = True) -> MLP:
        self.training = mode
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self) -> MLP:
        return self.train(False)

    @contextlib.contextmanager
    def mode(self, training: bool) -> Iterator[MLP]:
        """Within the block the model is in the given mode; afterwards, in the one it was in."""
        was = self.training
        self.train(training)
        try:
            yield self
        finally:
            self.train(was)

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

    def backward(self, *, need_dx: bool = False) -> np.ndarray | None:
        """Backpropagate from the head; every layer writes its grads.

        Returns dL/dx (N, D) when ``need_dx``; otherwise the first layer with
        parameters skips that product, which nobody reads during training, and
        the layers below it (e.g. an input Dropout) are not visited.
        """
        grad = self.head.backward()  # (N, C) = (softmax − onehot) / N
        stop = 0 if need_dx else self._first_param_layer
        for i in range(len(self.layers) - 1, stop - 1, -1):
            dx = self.layers[i].backward(grad, need_dx=need_dx or i > stop)
            if dx is None:  # the lowest layer visited, asked for no dx
                return None
            grad = dx
        return grad

    # -- parameters ----------------------------------------------------------
    def parameters(self) -> tuple[tuple[str, Layer, str], ...]:
        """(name, layer, key) of every parameter, input to output: ``layer.params[key]`` is it."""
        return self._parameters

    def named_params(self) -> dict[str, np.ndarray]:
        return {name: layer.params[k] for name, layer, k in self.parameters()}

    def named_grads(self) -> dict[str, np.ndarray]:
        return {name: layer.grads[k] for name, layer, k in self.parameters()}

    def linear_layers(self) -> list[tuple[int, Linear]]:
        return [(i, layer) for i, layer in enumerate(self.layers) if isinstance(layer, Linear)]

    def dropout_layers(self) -> list[tuple[int, Dropout]]:
        return [(i, layer) for i, layer in enumerate(self.layers) if isinstance(layer, Dropout)]

    @property
    def num_params(self) -> int:
        return sum(layer.num_params for layer in self.layers)

    @property
    def dtype(self) -> np.dtype:
        return next(iter(self.named_params().values())).dtype

    def load_params(self, params: dict[str, np.ndarray]) -> None:
        """Copy arrays into the model's parameters (names and shapes must match)."""
        for name, arr in self.named_params().items():
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
