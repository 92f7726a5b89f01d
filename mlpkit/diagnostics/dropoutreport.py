"""Dropout in its two modes, measured.

Training mode drops each unit with probability p and scales the survivors by
1/(1−p), so the expected activation is unchanged; inference mode is the
identity. This module measures both on real data: the drop rate, the mean
activation in each mode (their ratio ≈ 1 is the point of the 1/(1−p)), the
loss and accuracy of the model in each mode, and how much the predictions
wander across training-mode passes (Monte-Carlo dropout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mlpkit.nn.layers import Dropout
from mlpkit.nn.losses import softmax
from mlpkit.nn.model import MLP
from mlpkit.training.evaluate import logit_scores

DEFAULT_EXAMPLES = 1000
DEFAULT_PASSES = 20


@dataclass(frozen=True)
class DropoutLayerStats:
    layer: str  # "layers.2"
    p: float  # configured probability of dropping
    keep: float  # 1 − p
    units: int  # units seen in the batch (examples × width)
    drop_rate: float  # measured share of units dropped in one training-mode pass
    drop_rate_sigma: float  # sqrt(p (1 − p) / units): the binomial standard error
    mean_train: float  # mean output in training mode (dropped units count as 0)
    mean_eval: float  # mean output in inference mode (= the input)
    ratio: float  # mean_train / mean_eval, ≈ 1 thanks to the 1/(1−p) scaling


@dataclass(frozen=True)
class ModeScores:
    loss: float
    accuracy: float


@dataclass(frozen=True)
class DropoutReport:
    examples: int
    passes: int
    layers: list[DropoutLayerStats]
    train_mode: ModeScores  # one training-mode pass (dropout on)
    eval_mode: ModeScores  # inference mode
    mc_accuracy: float  # accuracy of the probabilities averaged over the training-mode passes
    mc_prob_std: float  # mean over examples of the std, across passes, of p(eval-mode predicted class)
    mc_agreement: float  # share of (pass, example) whose argmax matches inference mode


def _scores(logits: np.ndarray, y: np.ndarray) -> ModeScores:
    loss, acc, _ = logit_scores(logits, y)
    return ModeScores(loss, acc)


def _forward_capturing(model: MLP, x: np.ndarray) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Logits, and the input each Dropout layer received (current mode)."""
    inputs: dict[int, np.ndarray] = {}
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Dropout):
            inputs[i] = x
        x = layer.forward(x)
    return x, inputs


def dropout_report(model: MLP, x: np.ndarray, y: np.ndarray, passes: int = DEFAULT_PASSES) -> DropoutReport:
    """Measure every Dropout layer, and the model, in both modes on the batch (x (N, D), y (N,)).

    Uses the Dropout layers' own generators, so it advances them.
    """
    with model.mode(training=False):
        eval_logits, eval_inputs = _forward_capturing(model, x)
        layers = []
        for i, inp in eval_inputs.items():
            d: Dropout = model.layers[i]  # type: ignore[assignment]
            d.train()
            out = d.forward(inp)  # the same input as in inference mode, so the means compare directly
            mask = d.mask
            d.eval()
            units = int(inp.size)
            rate = float((mask == 0).mean()) if mask is not None else 0.0
            mean_eval = float(inp.mean(dtype=np.float64))
            mean_train = float(out.mean(dtype=np.float64))
            layers.append(DropoutLayerStats(
                f"layers.{i}", d.p, 1 - d.p, units, rate, math.sqrt(d.p * (1 - d.p) / units),
                mean_train, mean_eval, mean_train / mean_eval if mean_eval else float("nan"),
            ))
        eval_scores = _scores(eval_logits, y)
        eval_pred = eval_logits.argmax(axis=1)
        model.train()
        first = model.forward(x)
        train_scores = _scores(first, y)  # one training-mode pass
        probs = [softmax(first.astype(np.float64))]
        for _ in range(passes - 1):
            probs.append(softmax(model.forward(x).astype(np.float64)))
        stack = np.stack(probs)  # (T, N, C)
        rows = np.arange(len(y))
        p_pred = stack[:, rows, eval_pred]  # (T, N): probability of the eval-mode prediction
        mc_acc = float((stack.mean(axis=0).argmax(axis=1) == y).mean())
        agree = float((stack.argmax(axis=2) == eval_pred[None, :]).mean())
    return DropoutReport(len(y), passes, layers, train_scores, eval_scores, mc_acc,
                         float(p_pred.std(axis=0).mean()), agree)
