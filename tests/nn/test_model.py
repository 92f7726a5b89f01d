"""Building the MLP from a config; parameters, modes, summary, initializers."""

from __future__ import annotations

import numpy as np
import pytest

from mlpkit.config.validate import config_from_dict
from mlpkit.diagnostics.numgrad import numerical_gradient, rel_error
from mlpkit.errors import ConfigError
from mlpkit.nn.layers import Dropout, Linear, Sigmoid
from mlpkit.nn.model import MLP
from mlpkit.training.build import build_model
from mlpkit.training.rngs import Rngs


def _cfg(layers, **model):
    return config_from_dict({"model": {"layers": layers, **model}}).model


def test_build_infers_input_width_and_names_params(rng):
    m = build_model(_cfg([{"linear": 20}, "sigmoid", {"dropout": 0.5}, {"linear": 10}]), 64, rng)
    assert [type(layer) for layer in m.layers] == [Linear, Sigmoid, Dropout, Linear]
    assert {k: v.shape for k, v in m.named_params().items()} == {
        "layers.0.W": (64, 20), "layers.0.b": (20,), "layers.3.W": (20, 10), "layers.3.b": (10,)}
    assert m.named_grads().keys() == m.named_params().keys()
    assert m.num_params == 64 * 20 + 20 + 20 * 10 + 10


def test_summary_and_repr(rng):
    m = build_model(_cfg([{"linear": 20}, "relu", {"linear": 10}]), 64, rng)
    assert m.summary() == [("0", "Linear(64, 20)", "(N, 20)", 1300), ("1", "ReLU()", "(N, 20)", 0),
                           ("2", "Linear(20, 10)", "(N, 10)", 210)]
    assert "1,510 parameters" in repr(m) and "(1): ReLU()" in repr(m)


def test_train_eval_propagate(rng):
    m = build_model(_cfg([{"linear": 8}, {"dropout": 0.5}, {"linear": 10}]), 4, rng)
    assert m.eval() is m and not any(layer.training for layer in m.layers)
    assert all(layer.training for layer in m.train().layers)


def test_dtype_float32_default_and_float64(rng):
    cfg = _cfg([{"linear": 10}])
    assert build_model(cfg, 3, rng).dtype == np.float32
    assert build_model(cfg, 3, rng, dtype="float64").dtype == np.float64
    assert build_model(_cfg([{"linear": 10}], dtype="float64"), 3, rng).dtype == np.float64


def test_same_seed_same_weights_in_float32_and_float64():
    cfg = _cfg([{"linear": 30}, "sigmoid", {"linear": 10}])
    a = build_model(cfg, 50, Rngs.from_seed(3).init)
    b = build_model(cfg, 50, Rngs.from_seed(3).init, dtype="float64")
    for k, v in a.named_params().items():
        np.testing.assert_array_equal(v, b.named_params()[k].astype(np.float32))


@pytest.mark.parametrize(
    "init,extra,std",
    [("he", {}, np.sqrt(2 / 400)), ("lecun", {}, np.sqrt(1 / 400)), ("normal", {}, 1.0),
     ("normal", {"init_std": 0.1}, 0.1), ("xavier", {}, np.sqrt(6 / 700) / np.sqrt(3))],
)
def test_initializer_std(init, extra, std):
    m = build_model(_cfg([{"linear": 300}, {"linear": 10}], init=init, **extra), 400, np.random.default_rng(0))
    w = m.named_params()["layers.0.W"]
    assert w.std() == pytest.approx(std, rel=0.02)
    assert abs(w.mean()) < 0.01 * std * 10
    assert (m.named_params()["layers.0.b"] == 0).all()


def test_nielsen_ch5_init_biases_normal():
    m = build_model(_cfg([{"linear": 1000}, {"linear": 10}], init="lecun", bias_init="normal"), 784,
                    np.random.default_rng(0))
    assert m.named_params()["layers.0.b"].std() == pytest.approx(1.0, rel=0.1)


def test_per_layer_init_override(rng):
    m = build_model(_cfg([{"linear": {"out_features": 500, "init": "normal", "init_std": 2.0}}, {"linear": 10}]),
                    500, rng)
    assert m.named_params()["layers.0.W"].std() == pytest.approx(2.0, rel=0.02)


def test_refuses_huge_network_before_allocating(rng):
    cfg = _cfg([{"linear": 65536}, {"linear": 65536}, {"linear": 10}])
    with pytest.raises(ConfigError, match=r"the network would have 4,\d{3},\d{3},\d{3} parameters"):
        build_model(cfg, 784, rng)


def test_whole_network_backward_matches_finite_differences(rng):
    """End to end through the head, every parameter and the input, in float64."""
    cfg = _cfg([{"linear": 7}, "sigmoid", {"linear": 6}, "tanh", {"dropout": 0.3}, {"linear": 5}, "relu",
                {"linear": 10}], bias_init="normal", init="he")
    m: MLP = build_model(cfg, 5, rng, np.random.default_rng(9), dtype="float64")
    x = rng.standard_normal((6, 5))
    y = rng.integers(0, 10, 6)
    drop = m.layers[4]
    state = drop.rng.bit_generator.state

    def f():
        drop.rng.bit_generator.state = state  # the same mask every evaluation
        return m.loss(x, y)

    f()
    dx = m.backward(need_dx=True)
    analytic = {"x": dx, **{k: g.copy() for k, g in m.named_grads().items()}}
    numeric = {"x": numerical_gradient(f, x)}
    for k, p in m.named_params().items():
        numeric[k] = numerical_gradient(f, p)
    for k, a in analytic.items():
        assert rel_error(a, numeric[k]) < 1e-7, k


@pytest.mark.parametrize("batch,orders", [(None, "FFF"), (10, "FFF"), (32, "FFC"), (128, "FFC")])
def test_narrow_layers_keep_row_major_weights_from_batch_32_and_activations_stay_column_major(batch, orders):
    """build.weight_order: the 10-unit output layer's weights are row-major when the trainer's batch is 32 or
    more; every layer's outputs and input gradients stay column-major whatever its weights' order."""
    from mlpkit.config.validate import config_from_dict
    from mlpkit.nn import _kernels as blas
    from mlpkit.training.build import build_model, weight_order

    assert [weight_order("F", 10, 64), weight_order("F", 16, 32), weight_order("F", 17, 64),
            weight_order("F", 10, 31), weight_order("C", 100, 64), weight_order("F", 10, None)] == list("CCFFCF")
    cfg = config_from_dict({"model": {"layers": [{"linear": 20}, "sigmoid", {"linear": 18}, "tanh", {"linear": 10}]}})
    m = build_model(cfg.model, 12, np.random.default_rng(0), batch_size=batch)
    assert "".join(blas.order_of(layer.params["W"]) for _, layer in m.linear_layers()) == orders
    x = np.random.default_rng(1).standard_normal((4, 12)).astype(np.float32)
    outs = []
    for layer in m.layers:
        x = layer.forward(x)
        outs.append(blas.order_of(x))
    assert outs == ["F"] * len(m.layers)
    m.head.forward(x, np.arange(4))
    assert blas.order_of(m.backward(need_dx=True)) == "F"
