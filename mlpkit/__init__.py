"""mlpkit: multilayer perceptrons with hand-written NumPy forward and backward passes.

The names below are imported on first use (PEP 562), so that importing the math
core (``mlpkit.layers``, ``mlpkit.losses``, ``mlpkit.model``, ``mlpkit.optim``)
loads neither YAML nor the data and download code.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "MLP": "model", "SGD": "optim", "Config": "config", "load_config": "config", "Dataset": "data",
    "load_dataset": "data", "MlpkitError": "errors", "Dropout": "layers", "Layer": "layers", "Linear": "layers",
    "ReLU": "layers", "Sigmoid": "layers", "Tanh": "layers", "SoftmaxCrossEntropy": "losses", "softmax": "losses",
    "softmax_cross_entropy": "losses", "build_model": "build", "Trainer": "trainer",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mlpkit' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
