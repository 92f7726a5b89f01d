"""mlpkit: multilayer perceptrons with hand-written NumPy forward and backward passes.

From Python: ``run = mlpkit.train("configs/quickstart.yaml", epochs=5)``, ``mlpkit.load(RUN)``; see
``mlpkit.app.notebook``.

The names below are imported on first use (PEP 562), so that importing the math
core (``mlpkit.nn.layers``, ``mlpkit.nn.losses``, ``mlpkit.nn.model``, ``mlpkit.nn.optim``)
loads neither YAML nor the data and download code.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "MLP": "nn.model", "SGD": "nn.optim", "Config": "config.schema", "load_config": "app.configfile",
    "Dataset": "data.core", "load_dataset": "data.load", "MlpkitError": "errors", "Dropout": "nn.layers",
    "Layer": "nn.layers", "Linear": "nn.layers", "ReLU": "nn.layers", "Sigmoid": "nn.layers", "Tanh": "nn.layers",
    "SoftmaxCrossEntropy": "nn.losses", "softmax": "nn.losses", "softmax_cross_entropy": "nn.losses",
    "build_model": "training.build", "Trainer": "training.trainer",
    "train": "app.notebook", "load": "app.notebook", "Run": "app.notebook",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mlpkit' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
