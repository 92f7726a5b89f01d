"""The independent random streams of a run, all spawned from the config seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rngs:
    """Initial weights, minibatch order and dropout masks each draw from their own stream,
    so that changing one (say, adding a Dropout layer) leaves the others as they were."""

    init: np.random.Generator
    shuffle: np.random.Generator
    dropout: np.random.Generator
    augment: np.random.Generator  # data augmentation (the fourth child: the first three are as they always were)

    @classmethod
    def from_seed(cls, seed: int) -> Rngs:
        a, b, c, d = np.random.SeedSequence(seed).spawn(4)
        return cls(*(np.random.default_rng(s) for s in (a, b, c, d)))
