"""SGD update rule against hand computation (PyTorch's torch.optim.SGD semantics)."""

from __future__ import annotations

import numpy as np

from mlpkit.optim import SGD


def test_plain_sgd():
    p = {"layers.0.W": np.array([1.0, 2.0]), "layers.0.b": np.array([0.5])}
    g = {"layers.0.W": np.array([0.5, -1.0]), "layers.0.b": np.array([2.0])}
    SGD(lr=0.1).step(p, g)
    np.testing.assert_allclose(p["layers.0.W"], [0.95, 2.1])
    np.testing.assert_allclose(p["layers.0.b"], [0.3])


def test_momentum_and_weight_decay_two_steps():
    w = np.array([1.0])
    b = np.array([1.0])
    opt = SGD(lr=0.1, momentum=0.9, weight_decay=0.01)
    g = {"l.W": np.array([1.0]), "l.b": np.array([1.0])}
    opt.step({"l.W": w, "l.b": b}, g)
    # W: g' = 1 + 0.01*1 = 1.01; v = 1.01; W = 1 - 0.101 = 0.899. b not decayed: v = 1; b = 0.9
    np.testing.assert_allclose(w, [0.899])
    np.testing.assert_allclose(b, [0.9])
    opt.step({"l.W": w, "l.b": b}, g)
    # W: g' = 1 + 0.00899 = 1.00899; v = 0.9*1.01 + 1.00899 = 1.91799; W = 0.899 - 0.191799
    np.testing.assert_allclose(w, [0.899 - 0.191799])
    np.testing.assert_allclose(b, [0.9 - 0.19])
    assert set(opt.state_dict()) == {"l.W", "l.b"}


def test_float32_stays_float32():
    w = np.ones(3, dtype=np.float32)
    SGD(lr=0.5, momentum=0.5).step({"a.W": w}, {"a.W": np.ones(3, dtype=np.float32)})
    assert w.dtype == np.float32
    np.testing.assert_array_equal(w, [0.5, 0.5, 0.5])
