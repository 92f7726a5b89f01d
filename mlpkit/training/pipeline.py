"""Augmented minibatches, made a unit at a time in the trainer's own thread.

An epoch's minibatches are grouped into units of about ``UNIT_PIXELS`` pixels (2,048 MNIST
images). Unit u is augmented with its own generator, seeded by (the epoch's seed, u), so
what a step trains on depends only on the seed, the epoch's order and the step: a resumed
run recomputes the unit it stopped in and gets the same images.

Why not a background thread one chunk ahead, as data loaders do: on 2 cores the training
step's BLAS already keeps both busy (its threads spin between products), so a thread
beside it only takes turns with it. Measured on one epoch of 784-800-10, batch 32, with
Simard's elastic distortions (``scripts/bench_augment.py``, 2-core EPYC): 2.4 s with a
background thread one chunk ahead against 2.0 s in the trainer's thread (with an earlier,
slower version of the transforms), and 1.73 s with units made by 2 threads in bursts
against 1.69 s in the trainer's thread (1.12 s without augmentation); with elastic + affine
maps and units of 2,048, each half made by its own thread, 1.69 against 1.68 s.
"""

from __future__ import annotations

import numpy as np

from mlpkit.training.augment import Augmenter

# Pixels augmented at once: 2,048 MNIST images. A unit's transforms are drawn in a few calls whatever its size,
# and sampled in chunks small enough for the cache (augment.CHUNK_PIXELS), so a large unit only spreads the
# per-unit calls thinner (at 128 images, drawing and seeding took ~40 % of a unit's time), and an epoch's units took 0.52 s
# at 128, 0.33 s at 1,024, 0.29 s at 2,048 and 0.28 s at 4,096 (docs/performance.md). Larger images make
# fewer per unit, and a batch larger than this is done in slices.
UNIT_PIXELS = 2048 * 28 * 28


class AugmentedBatches:
    """The model inputs of one epoch's minibatches, augmented.

    Args:
        augmenter: the run's transforms.
        x: the training split's stored rows (N, H·W).
        batches: the epoch's index arrays, in order.
        seed: the epoch's augmentation seed.
        scale, shift: stored values to the model's, ``x · scale + shift``.
        dtype: the model's input dtype.
    """

    def __init__(self, augmenter: Augmenter, x: np.ndarray, batches: list[np.ndarray], seed: int, *,
                 scale: float, shift: float, dtype: np.dtype | type) -> None:
        self.augmenter, self.x, self.batches, self.seed = augmenter, x, batches, seed
        self.scale, self.shift, self.dtype = scale, shift, dtype
        self.slice = max(1, UNIT_PIXELS // (augmenter.h * augmenter.w))  # images augmented at once
        self.per_unit = max(1, self.slice // max(1, len(batches[0]) if batches else 1))  # whole batches per unit
        self._unit = -1
        self._rows = np.empty((0, 0), np.float32)
        self._starts = np.zeros(1, np.intp)

    def _make(self, u: int) -> None:
        """Augment unit u: its rows (n, H·W), already in the model's units."""
        aug = self.augmenter
        batches = self.batches[u * self.per_unit : (u + 1) * self.per_unit]
        idx = np.concatenate(batches)
        images = self.x.take(idx, axis=0).reshape(len(idx), aug.h, aug.w)  # take: as x[idx], faster
        rng = np.random.default_rng([self.seed, u])
        out = np.empty((len(idx), aug.h, aug.w), np.float32)
        for s in range(0, len(idx), self.slice):  # one slice unless a batch is larger than a slice
            aug(images[s : s + self.slice], rng, out[s : s + self.slice], scale=self.scale, shift=self.shift)
        self._rows = out.reshape(len(idx), aug.h * aug.w)
        self._starts = np.cumsum([0] + [len(b) for b in batches])
        self._unit = u

    def get(self, step: int) -> np.ndarray:
        """The model input (B, H·W) of the 1-based ``step``, row-major (BLAS reads it transposed)."""
        u, k = divmod(step - 1, self.per_unit)
        if u != self._unit:
            self._make(u)
        # A view, no copy (for a float32 model): each unit gets a new array, so nothing overwrites a batch
        # the model still holds for its backward pass.
        return np.asarray(self._rows[self._starts[k] : self._starts[k + 1]], dtype=self.dtype)
