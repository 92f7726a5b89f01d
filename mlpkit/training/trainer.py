"""The training loop: a Trainer owns a model, its optimizer and a run's random streams, and trains it epoch by
epoch, resumably. No files, no screens: results are dataclasses, progress goes through callbacks.

Beside it: ``evaluate`` (scoring), ``early_stopping`` (the best epoch), ``divergence`` (what went wrong),
``checkpoints`` (checking a saved state), ``pipeline`` (augmented batches).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlpkit.config.schema import Config
from mlpkit.data.core import Dataset, Split, prepare_splits, to_float
from mlpkit.errors import ConfigError
from mlpkit.training import divergence
from mlpkit.training.build import build_model, build_optimizer, check_model_fits_data
from mlpkit.training.early_stopping import EarlyStop, EarlyStopping
from mlpkit.training.evaluate import evaluate, loss_and_accuracy
from mlpkit.training.metrics import EpochMetrics, EvalResult, StepInfo
from mlpkit.training.rngs import Rngs
from mlpkit.training.schedules import lr_at, momentum_at

if TYPE_CHECKING:
    from mlpkit.training.pipeline import AugmentedBatches


def iterate_minibatches(n: int, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Index arrays of each minibatch; shuffled with ``rng`` (None keeps the order)."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[s : s + batch_size] for s in range(0, n, batch_size)]


class Trainer:
    """Owns a model, its optimizer and the random streams of one run.

    Args:
        cfg: the validated config.
        data: the loaded dataset.
    """

    def __init__(self, cfg: Config, data: Dataset) -> None:
        check_model_fits_data(cfg, data.num_classes)
        self.cfg = cfg
        self.data, self.train_split, self.val_split = prepare_splits(data, cfg.data.validation, cfg.data.normalize)
        k = min(cfg.data.train_eval_samples, len(self.train_split))
        self.train_eval_split = Split(self.train_split.x[:k], self.train_split.y[:k]) if k else None
        self.rngs = Rngs.from_seed(cfg.seed)
        self.model = build_model(cfg.model, self.data.num_features, self.rngs.init, self.rngs.dropout,
                                 batch_size=cfg.train.batch_size)
        t = cfg.train
        # Nielsen's L2 term (λ/2n)·Σw² on the mean loss is weight decay λ/n.
        wd = t.weight_decay if not t.l2 else t.l2 / len(self.train_split)
        self.optimizer = build_optimizer(self.model, cfg.model.backend, lr_at(t, 0), momentum_at(t, 0), wd)
        self._biases = [(name, layer) for name, layer, key in self.model.parameters() if key == "b"]
        self.explosion_loss = divergence.explosion_loss(self.data.num_classes)
        self.epoch = 0  # epochs completed
        self.epoch_step = 0  # steps completed in the current epoch (0 at an epoch boundary)
        self.history: list[EpochMetrics] = []
        self.early_stopping = EarlyStopping(cfg.train.early_stopping)  # and the best epoch (checkpoints/best.npz)
        aug = cfg.data.augment
        self._augmenter = None
        if aug is not None:
            if len(self.data.image_shape) != 2:
                raise ConfigError(f"data.augment: transforms images, but {self.data.name}'s examples are not "
                                  f"images (shape {self.data.image_shape})")
            # imported only when used: scipy.ndimage costs memory otherwise
            from mlpkit.training.augment import Augmenter

            self._augmenter = Augmenter(*self.data.image_shape,
                                        elastic=dataclasses.asdict(aug.elastic) if aug.elastic else None,
                                        affine=dataclasses.asdict(aug.affine) if aug.affine else None)
        # The augment generator's state before drawing the current epoch's augmentation seed (as for shuffle).
        self.augment_start = self.rngs.augment.bit_generator.state
        # The shuffle generator's state before drawing the current epoch's order: with it, a
        # resumed run redraws the same order and skips the steps already done.
        self.shuffle_start = self.rngs.shuffle.bit_generator.state
        self.loss_sum = 0.0  # Σ batch loss × batch size so far this epoch
        self.norm_sums: dict[str, float] = dict.fromkeys(self.model.named_params(), 0.0)
        self.norm_count = 0  # steps measured so far this epoch

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_split) / self.cfg.train.batch_size)

    @property
    def norm_every(self) -> int:
        """Gradient norms are measured on every k-th step: about ``grad_norm_samples`` per epoch."""
        n = self.cfg.train.grad_norm_samples
        return 1 if n == 0 else max(1, self.steps_per_epoch // n)

    def train_epoch(
        self,
        on_step: Callable[[StepInfo], None] | None = None,
        after_step: Callable[[Trainer], bool] | None = None,
    ) -> EpochMetrics | None:
        """Train the rest of the current epoch over the shuffled training split.

        ``after_step(self)`` runs after every step (checkpoints, interrupts); if it
        returns True the epoch stops there, resumable, and None is returned.
        Otherwise returns the epoch's metrics.
        """
        model, cfg = self.model, self.cfg
        epoch = self.epoch + 1
        x, y = self.train_split.x, self.train_split.y
        self.optimizer.lr = lr_at(cfg.train, self.epoch)  # the epoch's schedule values
        self.optimizer.momentum = momentum_at(cfg.train, self.epoch)
        self.shuffle_start = self._epoch_stream(self.rngs.shuffle, self.shuffle_start)
        if self.epoch_step == 0:
            self.loss_sum = 0.0
            self.norm_sums = dict.fromkeys(self.norm_sums, 0.0)
            self.norm_count = 0
        batches = iterate_minibatches(len(y), cfg.train.batch_size, self.rngs.shuffle)
        feed = self._augmented_batches(batches)
        model.train()
        # Looked up once, not per step (model.dtype, norm_every: properties that compute).
        scale, shift, dtype, norm_every = self.data.scale, self.data.shift, model.dtype, self.norm_every
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught by value, in _step
            for step in range(self.epoch_step + 1, len(batches) + 1):
                idx = batches[step - 1]
                if feed is not None:
                    xb = feed.get(step)  # (B, D), augmented and converted
                else:
                    # (B, D) row-major whatever the model's layout: BLAS reads it transposed (nn._kernels._operand).
                    # take, not x[idx]: the same rows, faster (docs/performance.md)
                    xb = to_float(x.take(idx, axis=0), scale, dtype, "C", shift)
                loss = self.train_step(xb, y.take(idx), epoch, step)
                if step % norm_every == 0:
                    self._measure_grad_norms(epoch, step)
                self.loss_sum += loss * len(idx)
                self.epoch_step = step
                if on_step is not None:
                    on_step(StepInfo(epoch, step, len(batches), loss))
                if after_step is not None and step < len(batches) and after_step(self):
                    return None
        grad_norms = {k: v / self.norm_count for k, v in self.norm_sums.items()}
        metrics = self._epoch_metrics(epoch, self.loss_sum / len(y), grad_norms)
        self.epoch, self.epoch_step = epoch, 0
        self.history.append(metrics)
        self.early_stopping.update(metrics, self.model)
        return metrics

    def _epoch_stream(self, gen: np.random.Generator, saved: Mapping[str, Any]) -> Mapping[str, Any]:
        """A generator's state as the current epoch began: recorded at the epoch's start, put back when
        resuming mid-epoch, so that the epoch's draws (its order, its augmentation seed) repeat exactly."""
        if self.epoch_step == 0:
            return gen.bit_generator.state
        gen.bit_generator.state = saved
        return saved

    def _augmented_batches(self, batches: list[np.ndarray]) -> AugmentedBatches | None:
        """This epoch's augmented minibatches (None without data.augment), from one seed drawn off the run's
        augment stream; a resumed epoch draws the same seed again."""
        if self._augmenter is None:
            return None
        self.augment_start = self._epoch_stream(self.rngs.augment, self.augment_start)
        seed = int(self.rngs.augment.integers(2**63))
        from mlpkit.training.pipeline import AugmentedBatches

        return AugmentedBatches(self._augmenter, self.train_split.x, batches, seed, scale=self.data.scale,
                                shift=self.data.shift, dtype=self.model.dtype)

    @property
    def improved(self) -> bool:
        """Whether the last finished epoch set a new best validation accuracy (checkpoints/best.npz)."""
        return self.early_stopping.improved

    @property
    def stopped_early(self) -> bool:
        """Early stopping's patience has run out: no more epochs."""
        return self.early_stopping.stopped

    def train_step(self, xb: np.ndarray, yb: np.ndarray, epoch: int = 0, step: int = 0) -> float:
        """One SGD step on the minibatch xb (B, D) float, yb (B,): forward, backward, update.

        This is the step ``mlpkit gradcheck`` proves (``gradcheck.check_training_steps``).
        Returns the training-mode loss of the batch; afterwards every layer's
        ``grads`` hold this batch's gradients.

        Raises:
            DivergenceError: the loss or a bias gradient is NaN or infinite; the
                weights are left as they were before this step.
        """
        model = self.model
        loss = model.loss(xb, yb)
        if not (math.isfinite(loss) and loss <= self.explosion_loss):
            raise divergence.loss_error(loss, model, xb, epoch, step, self.advice())
        model.backward()
        for name, layer in self._biases:
            if not math.isfinite(layer.grad_sqnorm("b")):  # cheap: one value per unit
                raise divergence.gradient_error(name, epoch, step, self.advice())
        self.optimizer.step()
        return loss

    def _measure_grad_norms(self, epoch: int, step: int) -> None:
        """Add each parameter's gradient norm of the step just taken to the epoch's means."""
        for name, layer, key in self.model.parameters():
            v = layer.grad_sqnorm(key)
            if not math.isfinite(v):
                raise divergence.gradient_error(name, epoch, step, self.advice())
            self.norm_sums[name] += math.sqrt(v)
        self.norm_count += 1

    def advice(self) -> str:
        """What to change after a divergence."""
        return divergence.advice(self.optimizer, self.cfg.train.lr)

    def _epoch_metrics(self, epoch: int, train_loss: float, grad_norms: dict[str, float]) -> EpochMetrics:
        te_loss = te_acc = v_loss = v_acc = None
        if self.train_eval_split is not None:
            te_loss, te_acc, _ = loss_and_accuracy(self.model, self.train_eval_split, self.data.scale, self.data.shift)
        if self.val_split is not None:
            v_loss, v_acc, _ = loss_and_accuracy(self.model, self.val_split, self.data.scale, self.data.shift)
        return EpochMetrics(epoch, train_loss, te_loss, te_acc, v_loss, v_acc, grad_norms, self.optimizer.lr)

    def evaluate_test(self) -> EvalResult:
        d = self.data
        return evaluate(self.model, d.test, d.scale, d.num_classes, "test", d.class_names, d.shift)


@dataclass(frozen=True)
class TrainResult:
    """What ``mlpkit train`` reports at the end."""

    history: list[EpochMetrics]
    test: EvalResult
    run_dir: str | None
    epoch_times: list[float]
    num_params: int
    early_stopping: EarlyStop | None = None


class Stopped(Exception):
    """Training stopped mid-epoch because ``after_step`` asked it to."""


def fit(
    trainer: Trainer,
    *,
    on_step: Callable[[StepInfo], None] | None = None,
    on_epoch: Callable[[EpochMetrics, float], None] | None = None,
    after_step: Callable[[Trainer], bool] | None = None,
) -> tuple[list[float], EvalResult]:
    """Train for the remaining epochs; returns the wall time of each and the test scores.

    Raises:
        Stopped: ``after_step`` returned True (the trainer holds a resumable mid-epoch state).
    """
    times = []
    while trainer.epoch < trainer.cfg.train.epochs and not trainer.stopped_early:
        t0 = time.perf_counter()
        m = trainer.train_epoch(on_step, after_step)
        if m is None:
            raise Stopped()
        times.append(time.perf_counter() - t0)
        if on_epoch is not None:
            on_epoch(m, times[-1])
    trainer.early_stopping.restore_best(trainer.model)  # early stopping: the best epoch's weights are the result
    return times, trainer.evaluate_test()


def early_stop_summary(trainer: Trainer) -> EarlyStop | None:
    """What early stopping did, for the output and results.json (None when it is off)."""
    return trainer.early_stopping.summary(trainer.epoch)
