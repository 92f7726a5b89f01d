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

    @classmethod
    def from_seed(cls, seed: int) -> Rngs:
        a, b, c = np.random.SeedSequence(seed).spawn(3)
        return cls(np.random.default_rng(a), np.random.default_rng(b), np.random.default_rng(c))
