"""mlpkit: multilayer perceptrons with hand-written NumPy forward and backward passes."""

from __future__ import annotations

__version__ = "0.1.0"

from .config import Config, load_config
from .data import Dataset, load_dataset
from .errors import MlpkitError
from .layers import Dropout, Layer, Linear, ReLU, Sigmoid, Tanh
from .losses import SoftmaxCrossEntropy, softmax, softmax_cross_entropy
from .model import MLP, build_model
from .optim import SGD
from .trainer import Trainer

__all__ = [
    "MLP", "SGD", "Config", "Dataset", "Dropout", "Layer", "Linear", "MlpkitError", "ReLU", "Sigmoid",
    "SoftmaxCrossEntropy", "Tanh", "Trainer", "__version__", "build_model", "load_config", "load_dataset",
    "softmax", "softmax_cross_entropy",
]
