"""Scoring a model in inference mode: logits in batches, loss and accuracy, the confusion matrix."""

from __future__ import annotations

import numpy as np

from mlpkit.data.core import Split, to_float
from mlpkit.nn.losses import cross_entropy_per_sample
from mlpkit.nn.model import MLP
from mlpkit.training.metrics import EvalResult

EVAL_BATCH = 1000


def predict_logits(model: MLP, x: np.ndarray, scale: float, batch: int = EVAL_BATCH, shift: float = 0.0
                   ) -> np.ndarray:
    """Inference-mode logits (N, C) in batches; restores the model's mode."""
    with model.mode(training=False):
        outs = [model.forward(to_float(x[s : s + batch], scale, model.dtype, shift=shift))
                for s in range(0, len(x), batch)]
    return np.concatenate(outs) if outs else np.zeros((0, 0), dtype=model.dtype)


def logit_scores(logits: np.ndarray, y: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Mean softmax-CE loss (summed in float64), accuracy and predicted classes of logits (N, C) for labels y (N,)."""
    pred = logits.argmax(axis=1)
    return float(cross_entropy_per_sample(logits, y).mean(dtype=np.float64)), float((pred == y).mean()), pred


def loss_and_accuracy(model: MLP, split: Split, scale: float, shift: float = 0.0) -> tuple[float, float, np.ndarray]:
    """Mean inference-mode loss, accuracy and predictions of a split."""
    return logit_scores(predict_logits(model, split.x, scale, shift=shift), split.y)


def evaluate(model: MLP, split: Split, scale: float, num_classes: int, name: str = "test",
             class_names: tuple[str, ...] = (), shift: float = 0.0) -> EvalResult:
    """Loss, accuracy, per-class accuracy and confusion matrix in inference mode."""
    loss, acc, pred = loss_and_accuracy(model, split, scale, shift)
    conf = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(conf, (split.y, pred), 1)
    support = conf.sum(axis=1)
    per_class = np.divide(np.diag(conf), support, out=np.zeros(num_classes), where=support > 0)
    return EvalResult(name, len(split), loss, acc, per_class.tolist(), conf.tolist(), list(class_names))
