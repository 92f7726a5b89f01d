"""Each op: forward on hand-computed values, backward against central differences in float64."""

from __future__ import annotations

import numpy as np
import pytest

from mlpkit.diagnostics.numgrad import numerical_gradient, rel_error
from mlpkit.errors import ShapeError, StateError
from mlpkit.nn.layers import Dropout, Linear, ReLU, Sigmoid, Tanh

TOL = 1e-7


def _check_backward(layer, x, rng, reset=None):
    """Compare layer.backward with central differences of sum(out * dout)."""
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape)

    def f():
        if reset:
            reset()
        return float(np.sum(layer.forward(x) * dout))

    if reset:
        reset()
    layer.forward(x)
    dx = layer.backward(dout)
    analytic = {"x": dx, **{k: g.copy() for k, g in layer.grads.items()}}
    numeric = {"x": numerical_gradient(f, x).reshape(x.shape)}
    for k, p in layer.params.items():
        numeric[k] = numerical_gradient(f, p).reshape(p.shape)
    for k in analytic:
        err = rel_error(analytic[k], numeric[k])
        assert err < TOL, f"{type(layer).__name__} d{k}: rel error {err:.2e}"
    return analytic


# --------------------------------------------------------------------------- Linear


def test_linear_forward_hand_computed(rng):
    lin = Linear(3, 2, rng=rng, dtype=np.float64)
    lin.params["W"][...] = [[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]]
    lin.params["b"][...] = [0.5, -2.0]
    x = np.array([[1.0, 2.0, 3.0], [-1.0, 0.0, 2.0]])
    # row 0: [1+0+9, 2-2+1.5] + b = [10.5, -0.5]; row 1: [-1+0+6, -2+0+1] + b = [5.5, -3.0]
    np.testing.assert_array_equal(lin.forward(x), [[10.5, -0.5], [5.5, -3.0]])


def test_linear_backward_matches_finite_differences(rng):
    lin = Linear(5, 4, rng=rng, dtype=np.float64, bias_init="normal")
    _check_backward(lin, rng.standard_normal((3, 5)), rng)


def test_linear_bias_gradient_is_sum_over_batch_not_classes(rng):
    """The seed's correction: db_j = Σ_n dY[n, j], one entry per output unit."""
    lin = Linear(2, 3, rng=rng, dtype=np.float64)
    lin.forward(np.ones((4, 2)))
    dout = np.arange(12.0).reshape(4, 3)
    lin.backward(dout)
    np.testing.assert_array_equal(lin.grads["b"], [18.0, 22.0, 26.0])
    assert lin.grads["b"].shape == (3,)


def test_linear_backward_without_dx_skips_it(rng):
    lin = Linear(2, 3, rng=rng, dtype=np.float64)
    lin.forward(np.ones((4, 2)))
    assert lin.backward(np.ones((4, 3)), need_dx=False) is None
    np.testing.assert_array_equal(lin.grads["W"], np.full((2, 3), 4.0))


def test_linear_rejects_wrong_input_width(rng):
    with pytest.raises(ShapeError, match=r"expects input of shape \(N, 3\), got \(2, 4\)"):
        Linear(3, 2, rng=rng).forward(np.zeros((2, 4), dtype=np.float32))


def test_linear_shapes_and_dtype(rng):
    lin = Linear(784, 100, rng=rng)
    assert lin.params["W"].shape == (784, 100) and lin.params["b"].shape == (100,)
    assert lin.params["W"].dtype == np.float32 and lin.num_params == 78_500
    assert repr(lin) == "Linear(784, 100)"


# --------------------------------------------------------------------------- activations


def test_sigmoid_forward_values():
    x = np.array([[0.0, np.log(3.0), -np.log(3.0)]])
    np.testing.assert_allclose(Sigmoid().forward(x), [[0.5, 0.75, 0.25]], rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_no_overflow_at_1e4(dtype):
    x = np.array([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = Sigmoid().forward(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y[[0, 4]], [0.0, 1.0])
    assert np.isfinite(y).all()


def test_sigmoid_backward(rng):
    _check_backward(Sigmoid(), rng.standard_normal((4, 6)) * 3, rng)


def test_sigmoid_derivative_at_most_quarter():
    s = Sigmoid()
    s.forward(np.linspace(-10, 10, 2001).reshape(1, -1))
    d = s.backward(np.ones((1, 2001)))
    assert d.max() == pytest.approx(0.25, abs=1e-12) and (d <= 0.25).all()


def test_tanh_forward_and_backward(rng):
    np.testing.assert_allclose(Tanh().forward(np.array([[0.0, 1.0]])), [[0.0, np.tanh(1.0)]])
    _check_backward(Tanh(), rng.standard_normal((4, 6)), rng)


def test_relu_forward_and_backward(rng):
    np.testing.assert_array_equal(ReLU().forward(np.array([[-2.0, 0.0, 3.0]])), [[0.0, 0.0, 3.0]])
    x = rng.standard_normal((4, 6))
    x[np.abs(x) < 1e-3] = 0.5  # keep clear of the kink for finite differences
    _check_backward(ReLU(), x, rng)


@pytest.mark.parametrize("layer", [Linear(2, 2, rng=np.random.default_rng(0)), Sigmoid(), Tanh(), ReLU(),
                                   Dropout(0.5, rng=np.random.default_rng(0))])
def test_backward_before_forward_is_clear_error(layer):
    with pytest.raises(StateError, match=r"backward\(\) called before forward\(\)"):
        layer.backward(np.ones((1, 2), dtype=np.float32))


# --------------------------------------------------------------------------- Dropout


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan"), "0.5"])
def test_dropout_p_validated_at_construction(p):
    with pytest.raises(ValueError, match=r"dropout probability has to be in \[0, 1\)"):
        Dropout(p, rng=np.random.default_rng(0))


def test_dropout_inference_mode_is_identity(rng):
    d = Dropout(0.5, rng=rng).eval()
    x = rng.standard_normal((5, 7))
    assert d.forward(x) is x
    g = rng.standard_normal((5, 7))
    assert d.backward(g) is g


def test_dropout_p_zero_is_identity_in_training(rng):
    x = rng.standard_normal((5, 7))
    np.testing.assert_array_equal(Dropout(0.0, rng=rng).forward(x), x)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8, 0.25, 0.3, 0.01])
def test_dropout_rate_and_mean_preserved(p):
    d = Dropout(p, rng=np.random.default_rng(7))
    x = np.ones((1000, 1000), dtype=np.float32)
    y = d.forward(x)
    n = x.size
    rate = float((y == 0).mean())
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(rate - p) < 4 * sigma, f"drop rate {rate} vs p={p} (4σ = {4 * sigma:.2e})"
    # survivors scaled by exactly 1/(1-p) of the p the user gave (rounded once, to float32)
    np.testing.assert_array_equal(np.unique(y[y != 0]), [np.float32(1 / (1 - p))])
    assert d.scale == 1 / (1 - p)
    assert abs(y.mean(dtype=np.float64) - 1.0) < 4 * np.sqrt(p / ((1 - p) * n))  # E[out] = x, within 4σ


def test_dropout_backward_reuses_mask_and_scale(rng):
    d = Dropout(0.3, rng=rng)
    x = rng.standard_normal((50, 40))
    y = d.forward(x)
    dx = d.backward(np.ones_like(x))
    np.testing.assert_array_equal(dx == 0, y == 0)
    np.testing.assert_array_equal(dx[dx != 0], 1 / 0.7)
    state = rng.bit_generator.state

    def reset():
        d.rng.bit_generator.state = state

    _check_backward(d, x, rng, reset=reset)


@pytest.mark.parametrize("p", [0.5, 0.25, 0.2])
def test_dropout_masks_differ_between_calls_and_odd_sizes(rng, p):
    d = Dropout(p, rng=rng)
    x = np.ones((7, 13))  # 91 units: not a whole number of bytes
    a, b = d.forward(x), d.forward(x)
    assert a.shape == (7, 13) and not np.array_equal(a, b)


@pytest.mark.parametrize("p", [0.5, 0.25, 2**-16 * 3, 0.2, 0.3])  # 1 bit, 8 bits, 16 bits, 32 bits
def test_keep_mask_is_rng_random_ge_p_in_distribution(p):
    """keep_mask(rng, shape, p) behaves as ``rng.random(shape) >= p``: keep rate 1 − p within 5σ,
    for each resolution it draws at, in both memory orders."""
    from mlpkit.nn.layers import keep_mask

    for order in "CF":
        m = keep_mask(np.random.default_rng(11), (2000, 1000), p, order)
        assert m.dtype == bool and m.shape == (2000, 1000) and m.flags[f"{order}_CONTIGUOUS"]
        sigma = np.sqrt(p * (1 - p) / m.size)
        assert abs((1 - m.mean()) - p) < 5 * sigma, (p, order, 1 - m.mean())


def test_dropout_does_not_modify_inputs(rng):
    d = Dropout(0.5, rng=rng)
    x = np.ones((10, 10))
    d.forward(x)
    g = np.ones((10, 10))
    d.backward(g)
    assert (x == 1).all() and (g == 1).all()
