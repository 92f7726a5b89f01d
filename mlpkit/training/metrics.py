"""What training reports: one step, one epoch, one evaluation (plain records, no behaviour)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class StepInfo:
    """Reported after every SGD step."""

    epoch: int  # 1-based
    step: int  # 1-based within the epoch
    steps: int  # steps in this epoch
    loss: float  # training-mode loss of this batch


@dataclass(frozen=True)
class EpochMetrics:
    """Everything measured in one epoch (deterministic for a seed; no wall time)."""

    epoch: int
    train_loss: float  # mean training-mode loss (dropout on) over the epoch's examples
    train_eval_loss: float | None  # inference mode, fixed sample of the training split
    train_eval_acc: float | None
    val_loss: float | None  # inference mode, the validation split
    val_acc: float | None
    grad_norms: dict[str, float]  # "layers.i.W" -> mean ‖dW‖ (Frobenius) over the sampled steps; ".b" -> ‖db‖
    lr: float


@dataclass(frozen=True)
class EvalResult:
    """Inference-mode scores of one split."""

    split: str
    n: int
    loss: float
    accuracy: float
    per_class_accuracy: list[float]
    confusion: list[list[int]]  # confusion[true][predicted]
    class_names: list[str] = field(default_factory=list)
