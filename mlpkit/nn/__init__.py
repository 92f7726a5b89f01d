"""The math: layers, the softmax-cross-entropy head, the MLP, SGD and the initializers.

Every backward pass here is written by hand and proven against finite
differences (``mlpkit.diagnostics.gradcheck``). The package knows nothing of
configs, files or screens.

May import: numpy, scipy and ``mlpkit.errors``; nothing else of mlpkit.
``_kernels`` is the fast path's private module (SciPy's BLAS called with
transpose flags and memory orders); the layers read as the textbook does and
leave the arithmetic to it.
"""

from mlpkit.nn._kernels import (  # what other packages need of the fast path: its products, and the
    Order,  # generator bytes a dropout mask draws (a checkpoint's dropout state is replayed with it)
    mask_draw_bytes,
    matmul,
    order_of,
)
from mlpkit.nn.layers import LAYERS, Dropout, Layer, LayerKind, Linear, ReLU, Sigmoid, Tanh, kind_of
from mlpkit.nn.losses import SoftmaxCrossEntropy, softmax, softmax_cross_entropy
from mlpkit.nn.model import MLP
from mlpkit.nn.optim import SGD

__all__ = [
           "LAYERS",
           "MLP",
           "SGD",
           "Dropout",
           "Layer",
           "LayerKind",
           "Linear",
           "Order",
           "ReLU",
           "Sigmoid",
           "SoftmaxCrossEntropy",
           "Tanh",
           "kind_of",
           "mask_draw_bytes",
           "matmul",
           "order_of",
           "softmax",
           "softmax_cross_entropy",
]
