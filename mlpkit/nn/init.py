"""Weight initializers for Linear layers.

Names follow PyTorch/Keras: ``xavier`` is Glorot-uniform, ``he`` is
Kaiming-normal (fan-in, gain sqrt(2)), ``lecun`` is normal with std
1/sqrt(fan_in) (Nielsen's "improved" init, ch. 3), ``normal`` is N(0, std²)
(Nielsen's original N(0, 1) with the default std of 1).
"""

from __future__ import annotations

import numpy as np

WEIGHT_INITS = ("xavier", "he", "lecun", "normal")
BIAS_INITS = ("zeros", "normal")


def init_weight(
    name: str,
    fan_in: int,
    fan_out: int,
    rng: np.random.Generator,
    *,
    std: float = 1.0,
    dtype: np.dtype | type = np.float32,
) -> np.ndarray:
    """Draw a (fan_in, fan_out) weight matrix.

    Args:
        name: one of ``WEIGHT_INITS``.
        std: standard deviation, used only by ``normal``.

    Returns:
        W: (fan_in, fan_out) array of ``dtype``; drawn in float64 so that the
        float32 and float64 models built from one seed hold the same values.
    """
    shape = (fan_in, fan_out)
    if name == "xavier":
        a = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-a, a, size=shape)
    elif name == "he":
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
    elif name == "lecun":
        w = rng.normal(0.0, np.sqrt(1.0 / fan_in), size=shape)
    elif name == "normal":
        w = rng.normal(0.0, std, size=shape)
    else:
        raise ValueError(f"unknown weight init {name!r}; expected one of {', '.join(WEIGHT_INITS)}")
    return w.astype(dtype)


def init_bias(
    name: str,
    fan_out: int,
    rng: np.random.Generator,
    *,
    std: float = 1.0,
    dtype: np.dtype | type = np.float32,
) -> np.ndarray:
    """Draw a (fan_out,) bias vector: zeros, or N(0, std²) as in Nielsen ch. 5."""
    if name == "zeros":
        return np.zeros(fan_out, dtype=dtype)
    if name == "normal":
        return rng.normal(0.0, std, size=fan_out).astype(dtype)
    raise ValueError(f"unknown bias init {name!r}; expected one of {', '.join(BIAS_INITS)}")
