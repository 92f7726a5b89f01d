"""Training and evaluation loops. No files, no screens: results are dataclasses,
progress goes through callbacks.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
import numpy as np
from mlpkit.train.build import build_model, check_model_fits_data, layout_for
from mlpkit.config.schema import Config
from mlpkit.data.core import Dataset, Split, prepare_splits, to_float
from mlpkit.errors import ConfigError, DivergenceError
from mlpkit.nn.optim import SGD
from mlpkit.train.rngs import Rngs
from mlpkit.train.schedules import lr_at, momentum_at
from mlpkit.train.metrics import EpochMetrics
from mlpkit.train.metrics import EvalResult
from mlpkit.train.metrics import StepInfo
from mlpkit.train.evaluate import _loss_acc, evaluate

if TYPE_CHECKING:
    from mlpkit.train.pipeline import AugmentedBatches


# Divergence also means explosion: a minibatch's mean loss above EXPLOSION_FACTOR × log C, i.e. 100 times
# the loss of a uniform guess over C classes (230 for 10 classes). A training run does not come back from
# there; NaN follows a few steps later, after the weights have been ruined.
EXPLOSION_FACTOR = 100.0


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
                                 layout=layout_for(cfg.train.batch_size), batch_size=cfg.train.batch_size)
        t = cfg.train
        # Nielsen's L2 term (λ/2n)·Σw² on the mean loss is weight decay λ/n.
        wd = t.weight_decay if not t.l2 else t.l2 / len(self.train_split)
        self.optimizer = SGD(self.model, lr_at(t, 0), momentum_at(t, 0), wd)
        self._biases = [(name, layer) for name, layer, key in self.model.parameters() if key == "b"]
        # The loss above which training has exploded: EXPLOSION_FACTOR × log C.
        self.explosion_loss = EXPLOSION_FACTOR * math.log(max(2, self.data.num_classes))
        self.epoch = 0  # epochs completed
        self.step = 0  # steps completed in the current epoch (0 at an epoch boundary)
        self.history: list[EpochMetrics] = []
        # The best validation accuracy so far (checkpoints/best.npz), and early stopping's count.
        self.best_val_acc: float | None = None
        self.best_epoch = 0
        self.bad_epochs = 0  # epochs since the best one
        self.improved = False  # whether the last finished epoch set a new best
        self.best_params: dict[str, np.ndarray] | None = None  # kept with early stopping only
        aug = cfg.data.augment
        self._augmenter = None
        if aug is not None:
            if len(self.data.image_shape) != 2:
                raise ConfigError(f"data.augment: transforms images, but {self.data.name}'s examples are not "
                                  f"images (shape {self.data.image_shape})")
            from mlpkit.train.augment import Augmenter  # imported only when used: scipy.ndimage costs memory otherwise

            self._augmenter = Augmenter(*self.data.image_shape,
                                        elastic=dataclasses.asdict(aug.elastic) if aug.elastic else None,
                                        affine=dataclasses.asdict(aug.affine) if aug.affine else None)
        # The augment generator's state before drawing the current epoch's augmentation seed (as for shuffle).
        self._augment_start = self.rngs.augment.bit_generator.state
        # The shuffle generator's state before drawing the current epoch's order: with it, a
        # resumed run redraws the same order and skips the steps already done.
        self._shuffle_start = self.rngs.shuffle.bit_generator.state
        self._loss_sum = 0.0  # Σ batch loss × batch size so far this epoch
        self._norm_sums: dict[str, float] = dict.fromkeys(self.model.named_params(), 0.0)
        self._norm_count = 0  # steps measured so far this epoch

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
        self._shuffle_start = self._epoch_stream(self.rngs.shuffle, self._shuffle_start)
        if self.step == 0:
            self._loss_sum = 0.0
            self._norm_sums = dict.fromkeys(self._norm_sums, 0.0)
            self._norm_count = 0
        batches = iterate_minibatches(len(y), cfg.train.batch_size, self.rngs.shuffle)
        feed = self._augmented_batches(batches)
        model.train()
        # Looked up once, not per step (model.dtype, norm_every: properties that compute).
        scale, shift, dtype, norm_every = self.data.scale, self.data.shift, model.dtype, self.norm_every
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is caught by value, in _step
            for step in range(self.step + 1, len(batches) + 1):
                idx = batches[step - 1]
                if feed is not None:
                    xb = feed.get(step)  # (B, D), augmented and converted
                else:
                    # (B, D) row-major whatever the model's layout: BLAS reads it transposed (nn._kernels._operand).
                    # take, not x[idx]: the same rows, 0.3 against 0.9 µs at batch 10 (1.0 against 1.8 at 64).
                    xb = to_float(x.take(idx, axis=0), scale, dtype, "C", shift)
                loss = self.train_step(xb, y.take(idx), epoch, step)
                if step % norm_every == 0:
                    self._measure_grad_norms(epoch, step)
                self._loss_sum += loss * len(idx)
                self.step = step
                if on_step is not None:
                    on_step(StepInfo(epoch, step, len(batches), loss))
                if after_step is not None and step < len(batches) and after_step(self):
                    return None
        grad_norms = {k: v / self._norm_count for k, v in self._norm_sums.items()}
        metrics = self._epoch_metrics(epoch, self._loss_sum / len(y), grad_norms)
        self.epoch, self.step = epoch, 0
        self.history.append(metrics)
        self._track_best(metrics)
        return metrics

    def _epoch_stream(self, gen: np.random.Generator, saved: dict) -> dict:
        """A generator's state as the current epoch began: recorded at the epoch's start, put back when
        resuming mid-epoch, so that the epoch's draws (its order, its augmentation seed) repeat exactly."""
        if self.step == 0:
            return gen.bit_generator.state
        gen.bit_generator.state = saved
        return saved

    def _augmented_batches(self, batches: list[np.ndarray]) -> AugmentedBatches | None:
        """This epoch's augmented minibatches (None without data.augment), from one seed drawn off the run's
        augment stream; a resumed epoch draws the same seed again."""
        if self._augmenter is None:
            return None
        self._augment_start = self._epoch_stream(self.rngs.augment, self._augment_start)
        seed = int(self.rngs.augment.integers(2**63))
        from mlpkit.train.pipeline import AugmentedBatches

        return AugmentedBatches(self._augmenter, self.train_split.x, batches, seed, scale=self.data.scale,
                                shift=self.data.shift, dtype=self.model.dtype)

    def _track_best(self, m: EpochMetrics) -> None:
        """A new best validation accuracy (by more than early stopping's min_delta), or one more epoch without."""
        es = self.cfg.train.early_stopping
        self.improved = m.val_acc is not None and (
            self.best_val_acc is None or m.val_acc > self.best_val_acc + (es.min_delta if es else 0.0))
        if self.improved:
            self.best_val_acc, self.best_epoch, self.bad_epochs = m.val_acc, m.epoch, 0
            if es is not None:
                self.best_params = {k: v.copy() for k, v in self.model.named_params().items()}
        elif m.val_acc is not None:
            self.bad_epochs += 1

    @property
    def stopped_early(self) -> bool:
        """Early stopping's patience has run out: no more epochs."""
        es = self.cfg.train.early_stopping
        return es is not None and self.bad_epochs >= es.patience

    def restore_best(self) -> bool:
        """With early stopping, put the best epoch's weights back into the model (Keras's
        ``restore_best_weights``); returns whether it did."""
        if self.cfg.train.early_stopping is None or self.best_params is None:
            return False
        self.model.load_params(self.best_params)
        return True

    # -- state for checkpoints -------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict]:
        """Everything needed to continue bit-identically: arrays and JSON-able data."""
        arrays = {k: v.copy() for k, v in self.model.named_params().items()}
        arrays.update({f"optim.{k}": v for k, v in self.optimizer.state_dict().items()})
        arrays.update({f"best.{k}": v.copy() for k, v in (self.best_params or {}).items()})
        shuffle_state = self._shuffle_start if self.step else self.rngs.shuffle.bit_generator.state
        meta = {
            "epoch": self.epoch,
            "step": self.step,
            "shuffle_rng": shuffle_state,
            "dropout_rng": self.rngs.dropout.bit_generator.state,
            "augment_rng": self._augment_start if self.step else self.rngs.augment.bit_generator.state,
            "loss_sum": self._loss_sum,
            "lr": self.optimizer.lr,
            "norm_sums": self._norm_sums,
            "norm_count": self._norm_count,
            "history": [dataclasses.asdict(m) for m in self.history],
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
        }
        return arrays, meta

    def load_state(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        """Restore what ``state`` returned (the caller has checked names and shapes)."""
        self.model.load_params(arrays)
        self.optimizer.load_state_dict({k[len("optim."):]: v for k, v in arrays.items() if k.startswith("optim.")})
        self.epoch, self.step = int(meta["epoch"]), int(meta["step"])
        self.rngs.shuffle.bit_generator.state = meta["shuffle_rng"]
        self._shuffle_start = meta["shuffle_rng"]
        self.rngs.dropout.bit_generator.state = meta["dropout_rng"]
        self.rngs.augment.bit_generator.state = meta["augment_rng"]
        self._augment_start = meta["augment_rng"]
        self._loss_sum = float(meta["loss_sum"])
        self._norm_sums = {k: float(v) for k, v in meta["norm_sums"].items()}
        self._norm_count = int(meta.get("norm_count", 0))
        self.history = [EpochMetrics(**m) for m in meta["history"]]
        self.best_val_acc, self.best_epoch = meta["best_val_acc"], int(meta["best_epoch"])
        self.bad_epochs = int(meta["bad_epochs"])
        best = {k[len("best."):]: v for k, v in arrays.items() if k.startswith("best.")}
        self.best_params = {k: v.astype(self.model.dtype) for k, v in best.items()} or None

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
        if not math.isfinite(loss):
            raise DivergenceError(
                f"the loss became {loss} at epoch {epoch}, step {step} ({self._where_nonfinite(xb)}); try a "
                f"{self.advice()}"
            )
        if loss > self.explosion_loss:
            raise DivergenceError(
                f"the loss exploded to {loss:.3g} at epoch {epoch}, step {step}, over {EXPLOSION_FACTOR:g}× that of a "
                f"uniform guess ({self._largest_weight()}); try a {self.advice()}"
            )
        model.backward()
        for name, layer in self._biases:
            if not math.isfinite(layer.grad_sqnorm("b")):  # cheap: one value per unit
                raise DivergenceError(
                    f"the gradient of {name} became NaN or infinite at epoch {epoch}, step {step}; try a "
                    f"{self.advice()}"
                )
        self.optimizer.step()
        return loss

    def _measure_grad_norms(self, epoch: int, step: int) -> None:
        """Add each parameter's gradient norm of the step just taken to the epoch's means."""
        for name, layer, key in self.model.parameters():
            v = layer.grad_sqnorm(key)
            if not math.isfinite(v):
                raise DivergenceError(
                    f"the gradient of {name} became NaN or infinite at epoch {epoch}, step {step}; try a "
                    f"{self.advice()}"
                )
            self._norm_sums[name] += math.sqrt(v)
        self._norm_count += 1

    def advice(self) -> str:
        """What to change after a divergence."""
        t = self.cfg.train
        wd = self.optimizer.weight_decay
        if self.optimizer.lr * wd >= 1:
            return (f"smaller learning rate or weight decay (train.lr × weight decay is {self.optimizer.lr * wd:g}; "
                    "at 1 or more each step overshoots zero)")
        return f"smaller learning rate (train.lr is {t.lr:g})"

    def _largest_weight(self) -> str:
        """The Linear layer holding the largest weight, and how large it is."""
        sizes = {f"layers.{i}.W": float(np.abs(layer.params["W"]).max()) for i, layer in self.model.linear_layers()}
        name = max(sizes, key=sizes.__getitem__)
        return f"{name} holds weights up to |w| = {sizes[name]:.3g}"

    def _where_nonfinite(self, xb: np.ndarray) -> str:
        """Name the first parameter, or else the first layer output, that is NaN or infinite."""
        for name, p in self.model.named_params().items():
            if not np.isfinite(p).all():
                return f"{name} holds NaN or infinite values"
        out = xb
        with np.errstate(all="ignore"):
            for i, layer in enumerate(self.model.layers):
                out = layer.forward(out)
                if not np.isfinite(out).all():
                    return f"the output of layers.{i} {layer!r} overflowed"
        return "the logits are too large for the loss"

    def _epoch_metrics(self, epoch: int, train_loss: float, grad_norms: dict[str, float]) -> EpochMetrics:
        te_loss = te_acc = v_loss = v_acc = None
        if self.train_eval_split is not None:
            te_loss, te_acc, _ = _loss_acc(self.model, self.train_eval_split, self.data.scale, self.data.shift)
        if self.val_split is not None:
            v_loss, v_acc, _ = _loss_acc(self.model, self.val_split, self.data.scale, self.data.shift)
        return EpochMetrics(epoch, train_loss, te_loss, te_acc, v_loss, v_acc, grad_norms, self.optimizer.lr)

    def evaluate_test(self) -> EvalResult:
        d = self.data
        return evaluate(self.model, Split(d.x_test, d.y_test), d.scale, d.num_classes, "test", d.class_names,
                        d.shift)


@dataclass(frozen=True)
class TrainResult:
    """What ``mlpkit train`` reports at the end."""

    history: list[EpochMetrics]
    test: EvalResult
    run_dir: str | None
    epoch_times: list[float]
    num_params: int
    early_stopping: EarlyStop | None = None


@dataclass(frozen=True)
class EarlyStop:
    """How early stopping ended a run; the final weights are those of ``best_epoch``."""

    best_epoch: int
    best_val_acc: float
    epochs_trained: int
    stopped_early: bool  # patience ran out before train.epochs


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
    trainer.restore_best()  # early stopping: the best epoch's weights are the result
    return times, trainer.evaluate_test()


def early_stop_summary(trainer: Trainer) -> EarlyStop | None:
    """What early stopping did, for the output and results.json (None when it is off)."""
    if trainer.cfg.train.early_stopping is None or trainer.best_val_acc is None:
        return None
    return EarlyStop(trainer.best_epoch, trainer.best_val_acc, trainer.epoch, trainer.stopped_early)
