"""Minibatch SGD with momentum and weight decay, on a model's flat parameter store.

The update follows PyTorch's ``torch.optim.SGD`` (dampening 0, not Nesterov):

    g = dW + weight_decay · W        (weights only; biases are not decayed)
    v = momentum · v + g
    W = W − lr · v

Two things make it cheap. All parameters live in one contiguous array
(``FlatParams``), so each line above is one whole-array operation however many
layers there are. And the learning rate is folded into the backward pass: the
trainer asks the model for gradients already multiplied by ``backward_scale``
(= lr; scaling the (N, C) logits gradient scales every gradient), which saves a
full pass over the parameters per step. The velocity is kept in the same
scaled units (v_s = lr · v) and rescaled if the learning rate changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import blas
from .model import FlatParams

# Entries per chunk of the update: 512 KB of float32 stays in the L2 cache between
# reading a chunk's gradient for its norm and reading it again for the update.
# Measured on 2 cores for 1.86M parameters: 0.66 ms per step, against 0.80 ms for a
# norm pass then an update pass, and no faster with a second thread (the pass is
# bound by memory bandwidth, which two cores share).
CHUNK = 1 << 17


class SGD:
    """Stochastic gradient descent over a FlatParams store.

    Args:
        flat: the model's parameters and gradients (``model.flat``).
        lr: learning rate (> 0).
        momentum: in [0, 1); 0 keeps no velocity.
        weight_decay: L2 coefficient, applied to weight matrices only.
    """

    def __init__(self, flat: FlatParams, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        self.flat = flat
        self._lr = float(lr)
        self.momentum = momentum
        self.weight_decay = weight_decay
        self._v: np.ndarray | None = None  # lr-scaled velocity, flat
        self._tasks: list[tuple[int, slice, bool]] | None = None

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        if self._v is not None and value != self._lr:
            self._v *= self._v.dtype.type(value / self._lr)  # keep v_s = lr · v
        self._lr = float(value)

    def set_lr_raw(self, value: float) -> None:
        """Set the learning rate without rescaling the velocity (restoring a checkpoint)."""
        self._lr = float(value)

    @property
    def backward_scale(self) -> float:
        """The factor the gradients in ``flat.grad`` must carry when ``step`` runs."""
        return self._lr

    def step(self) -> list[float]:
        """Update ``flat.data`` in place from lr-scaled gradients in ``flat.grad``.

        Returns ‖lr·g‖² of each parameter (in ``flat.names`` order), read chunk by
        chunk just before the chunk is updated, while it is in cache: the trainer
        reports gradient norms at little extra cost.
        """
        if self._tasks is None:
            self._tasks = self._plan()
        if self.momentum and self._v is None:
            self._v = np.zeros_like(self.flat.data)
        results = [self._update_chunk(t) for t in self._tasks]
        sq = [0.0] * len(self.flat.names)
        for (k, _, _), v in zip(self._tasks, results):  # fixed order: deterministic sums
            sq[k] += v
        return sq

    def step_fused(self, linears: list[tuple[str, Any]], measure: bool) -> list[float | None]:
        """One update after ``model.backward(scale=lr, defer_dW=True)``.

        Each weight matrix is updated by one accumulating GEMM (``Linear.accumulate_dW``)
        without forming its gradient: W ← (1 − lr·wd)·W − lr·xᵀ·dY, or with momentum
        v ← μ·v + lr·xᵀ·dY, then W ← W − v (− lr·wd·W). Biases update from ``flat.grad``.

        Args:
            linears: (weight name, Linear layer) pairs, e.g. ("layers.0.W", layer).
            measure: also return each weight gradient's squared norm
                (``Linear.dW_sqnorm``: from Gram matrices for small batches, else
                formed in ``flat.grad``); otherwise weights report None.

        Returns:
            ‖lr·g‖² per parameter in ``flat.names`` order (None for unmeasured weights).
        """
        if self._tasks is None:
            self._tasks = self._plan()
        flat = self.flat
        if self.momentum and self._v is None:
            self._v = np.zeros_like(flat.data)
        sq: list[float | None] = [None] * len(flat.names)
        fused = set()
        lr, wd, mu = self._lr, self.weight_decay, self.momentum
        for name, layer in linears:
            k = flat.names.index(name)
            fused.add(k)
            if measure:
                sq[k] = layer.dW_sqnorm(flat.grad_view(name))  # lr·dW, since dY carries lr
            W = flat.view(name)
            if mu:
                v = self._v[flat.slices[name]].reshape(W.shape, order=flat.order)  # type: ignore[index]
                layer.accumulate_dW(v, 1.0, mu)  # v ← μ·v + lr·dW
                if wd:
                    v += W * W.dtype.type(lr * wd)
                W -= v
            else:
                layer.accumulate_dW(W, -1.0, 1.0 - lr * wd)  # W ← (1 − lr·wd)·W − lr·dW
        for task in self._tasks:
            k = task[0]
            if k in fused:
                continue
            v = self._update_chunk(task)
            sq[k] = v if sq[k] is None else sq[k] + v
        return sq

    def _plan(self) -> list[tuple[int, slice, bool]]:
        """Chunks of at most CHUNK entries, each inside one parameter: (name index, slice, decayed?)."""
        decayed = {(sl.start, sl.stop) for sl in self.flat.weight_slices}
        tasks = []
        for k, name in enumerate(self.flat.names):
            sl = self.flat.slices[name]
            is_w = name.endswith(".W")
            for a in range(sl.start, sl.stop, CHUNK):
                tasks.append((k, slice(a, min(a + CHUNK, sl.stop)), is_w and bool(decayed)))
        return tasks

    def _update_chunk(self, task: tuple[int, slice, bool]) -> float:
        _, sl, is_weight = task
        p, g = self.flat.data[sl], self.flat.grad[sl]
        sq = blas.sqnorm(g)
        if self.weight_decay and is_weight:
            g += p * p.dtype.type(self._lr * self.weight_decay)  # lr · wd · W
        if self.momentum:
            v = self._v[sl]  # type: ignore[index]
            v *= v.dtype.type(self.momentum)
            v += g
            g = v
        p -= g
        return sq

    # -- checkpoints -----------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """The velocity per parameter name, as stored: lr · v (exact, for bit-identical resume)."""
        if self._v is None:
            return {}
        f = self.flat
        return {n: self._v[f.slices[n]].reshape(f.shapes[n], order=f.order).copy() for n in f.names}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what ``state_dict`` returned (at the same learning rate)."""
        if not state:
            self._v = None
            return
        self._v = np.zeros_like(self.flat.data)
        for n, arr in state.items():
            self._v[self.flat.slices[n]] = np.asarray(arr).ravel(order=self.flat.order)
