"""The softmax-cross-entropy head."""

from __future__ import annotations

import numpy as np
import pytest

from mlpkit.diagnostics.numgrad import numerical_gradient, rel_error
from mlpkit.errors import StateError
from mlpkit.nn.losses import SoftmaxCrossEntropy, softmax, softmax_cross_entropy


@pytest.mark.parametrize("c", [2, 10, 37])
def test_uniform_logits_give_log_c(c):
    loss, _ = softmax_cross_entropy(np.zeros((5, c)), np.arange(5) % c)
    assert loss == pytest.approx(np.log(c), rel=1e-15)


def test_hand_computed_loss_and_gradient():
    z = np.array([[np.log(1.0), np.log(3.0)], [0.0, 0.0]])
    y = np.array([1, 0])
    loss, dz = softmax_cross_entropy(z, y)
    # softmax rows: [0.25, 0.75], [0.5, 0.5]; loss = -(log .75 + log .5)/2
    assert loss == pytest.approx(-(np.log(0.75) + np.log(0.5)) / 2, rel=1e-14)
    np.testing.assert_allclose(dz, [[0.25 / 2, -0.25 / 2], [-0.5 / 2, 0.5 / 2]], rtol=1e-14)


def test_gradient_matches_finite_differences(rng):
    z = rng.standard_normal((6, 5)) * 2
    y = rng.integers(0, 5, 6)
    _, dz = softmax_cross_entropy(z, y)
    num = numerical_gradient(lambda: softmax_cross_entropy(z, y)[0], z).reshape(z.shape)
    assert rel_error(dz, num) < 1e-7


def test_gradient_is_mean_over_batch(rng):
    """dZ = (P − Y)/N: rows of the gradient sum to zero, and scale as 1/N."""
    z = rng.standard_normal((8, 4))
    y = rng.integers(0, 4, 8)
    _, dz = softmax_cross_entropy(z, y)
    np.testing.assert_allclose(dz.sum(axis=1), 0.0, atol=1e-16)
    onehot = np.eye(4)[y]
    np.testing.assert_allclose(dz, (softmax(z) - onehot) / 8, rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stable_for_huge_logits(dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], dtype=dtype)
    y = np.array([1, 2])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # exp underflow to 0 is fine
        loss, dz = softmax_cross_entropy(z, y)
    # row 0: -z_y + logsumexp = 1e4 + 1e4; row 1: uniform, log 3
    assert loss == pytest.approx((2e4 + np.log(3)) / 2, rel=1e-6)
    assert np.isfinite(dz).all()
    np.testing.assert_allclose(dz[0], [0.5, -0.5, 0.0], atol=1e-7)


def test_head_object_and_order():
    head = SoftmaxCrossEntropy()
    with pytest.raises(StateError, match="before forward"):
        head.backward()
    loss = head.forward(np.zeros((2, 3)), np.array([0, 1]))
    assert loss == pytest.approx(np.log(3))
    assert head.backward().shape == (2, 3)


@pytest.mark.parametrize("shape", [(1, 5), (7, 1), (6, 4), (64, 10), (65, 10), (300, 3)])  # fsum, then a reduction
def test_both_memory_orders_and_thin_shapes_give_the_same_loss_and_gradient(shape):
    # The true-class entries are read and written by flat index in the logits' memory order.
    rng = np.random.default_rng(shape[0])
    z = rng.standard_normal(shape)
    y = rng.integers(0, shape[1], shape[0])
    loss_c, d_c = softmax_cross_entropy(np.ascontiguousarray(z), y)
    loss_f, d_f = softmax_cross_entropy(np.asfortranarray(z), y)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    ref = p.copy()
    ref[np.arange(shape[0]), y] -= 1
    ref /= shape[0]
    assert loss_c == pytest.approx(-np.log(p[np.arange(shape[0]), y]).mean(), rel=1e-12)
    assert loss_f == pytest.approx(loss_c, rel=1e-12)
    np.testing.assert_allclose(d_c, ref, atol=1e-15)
    np.testing.assert_allclose(d_f, ref, atol=1e-15)
    assert d_f.flags.f_contiguous
    strided = np.asfortranarray(np.repeat(z, 2, axis=1))[:, ::2]  # neither row- nor column-major
    loss_s, d_s = softmax_cross_entropy(strided, y)
    assert loss_s == pytest.approx(loss_c, rel=1e-12)
    np.testing.assert_allclose(d_s, ref, atol=1e-15)


def test_the_loss_mean_on_both_paths():
    """Up to 64 examples the batch's losses are summed by math.fsum, beyond by a float64 reduction."""
    for n in (64, 65):
        z = np.zeros((n, 2), dtype=np.float32)
        z[:, 0] = 1e-3 * np.arange(n, dtype=np.float32)
        y = np.zeros(n, dtype=int)
        per = np.log1p(np.exp(-z[:, 0].astype(np.float64)))  # −log softmax of class 0, in float64
        loss, d = softmax_cross_entropy(np.asfortranarray(z), y)
        assert loss == pytest.approx(per.mean(), rel=1e-6)
        assert d.dtype == np.float32


def test_the_loss_of_logits_near_the_largest_double_is_inf_not_an_error():
    """math.fsum raises OverflowError when its partial sums overflow; the loss is then infinite, as NumPy's sum is."""
    z = np.array([[1e308, -1e308], [1e308, -1e308]])
    loss, _ = softmax_cross_entropy(z, np.array([1, 1]))
    assert loss == np.inf
