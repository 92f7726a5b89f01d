"""The layer contract, closed: what every layer promises, and the three holes an independent read found."""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mlpkit.nn import LAYERS, MLP, Dropout, Layer, Linear, kind_of
from mlpkit.nn._kernels import LinearGrads


def _layers(rng: np.random.Generator) -> list[Layer]:
    """One of every registered kind, float64, in training mode."""
    out: list[Layer] = []
    for kind in LAYERS.values():
        if kind.role == "linear":
            out.append(Linear(5, 5, rng=rng, dtype=np.float64))
        elif kind.role == "dropout":
            out.append(Dropout(0.5, rng=np.random.default_rng(3)))
        else:
            out.append(kind.cls())
    return out


def test_setting_a_weight_gradient_reads_back_what_was_set(rng):
    """Hole 1: grads['W'] = g used to read back as xᵀ·dout (the pending factors won)."""
    lin = Linear(4, 3, rng=rng, dtype=np.float64)
    x, dout = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    lin.forward(x)
    lin.backward(dout)
    assert lin.grads.factors() is not None  # dW still held as its factors
    mine = np.full((4, 3), 7.0)
    lin.grads["W"] = mine
    assert lin.grads.factors() is None
    np.testing.assert_array_equal(lin.grads["W"], mine)
    # Reading without setting still forms xᵀ·dout.
    lin.backward(dout)
    np.testing.assert_allclose(lin.grads["W"], x.T @ dout, rtol=1e-13)


def test_linear_grads_refuse_a_wrong_shape_and_keep_their_keys(rng):
    g = LinearGrads(np.zeros((4, 3)), np.zeros(3))
    with pytest.raises(Exception, match=r"cannot set 'W' to an array of shape \(3, 4\)"):
        g["W"] = np.zeros((3, 4))
    with pytest.raises(TypeError, match="keep their keys"):
        del g["b"]
    assert list(g) == ["W", "b"] and len(g) == 2


@pytest.mark.parametrize("index", range(len(LAYERS)), ids=list(LAYERS))
def test_every_layer_takes_need_dx(index, rng):
    """Hole 2: need_dx is part of every layer's backward: dx with True, None with False, grads written either way."""
    layer = _layers(rng)[index]
    x = rng.standard_normal((4, 5))
    out = layer.forward(x)
    g = rng.standard_normal(out.shape)
    dx = layer.backward(g, need_dx=True)
    assert isinstance(dx, np.ndarray) and dx.shape == x.shape
    grads = {k: np.array(v, copy=True) for k, v in layer.grads.items()}
    if kind_of(layer).role != "dropout":  # a new forward; dropout keeps the mask it drew
        layer.forward(x)
    assert layer.backward(g, need_dx=False) is None
    for k, v in grads.items():
        np.testing.assert_array_equal(layer.grads[k], v)
    params = inspect.signature(type(layer).backward).parameters
    assert params["need_dx"].kind is inspect.Parameter.KEYWORD_ONLY and params["need_dx"].default is True


def test_mlp_backward_has_no_isinstance():
    """Hole 3: the network's backward treats every layer alike."""
    src = textwrap.dedent(inspect.getsource(MLP.backward))
    calls = [n.func.id for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    assert "isinstance" not in calls


def test_mlp_backward_gives_dx_only_when_asked(rng):
    model = MLP([Dropout(0.2, rng=np.random.default_rng(1)), Linear(5, 4, rng=rng, dtype=np.float64),
                 LAYERS["tanh"].cls(), Linear(4, 3, rng=rng, dtype=np.float64)], 5)
    x, y = rng.standard_normal((6, 5)), np.array([0, 1, 2, 0, 1, 2])
    model.loss(x, y)
    assert model.backward() is None
    model.loss(x, y)
    dx = model.backward(need_dx=True)
    assert dx is not None and dx.shape == (6, 5)


def test_the_registry_is_the_one_table_of_layers():
    """Config names, classes, roles and ONNX operators come from one place; every class is registered once."""
    assert list(LAYERS) == ["linear", "sigmoid", "relu", "tanh", "dropout"]
    assert {k.role for k in LAYERS.values()} == {"linear", "activation", "dropout"}
    assert len({k.cls for k in LAYERS.values()}) == len(LAYERS)
    assert {n: k.onnx_op for n, k in LAYERS.items()} == {"linear": "Gemm", "sigmoid": "Sigmoid", "relu": "Relu",
                                                         "tanh": "Tanh", "dropout": None}
    for kind in LAYERS.values():
        if kind.role == "activation":
            assert kind.derivative_bound and hasattr(kind.cls, "derivative")
    from mlpkit.config.schema import _LAYER_OPTIONS, _MAIN_OPTION, LAYER_TYPES

    assert tuple(LAYERS) == LAYER_TYPES
    assert _MAIN_OPTION == {"linear": "out_features", "dropout": "p"}
    assert _LAYER_OPTIONS["dropout"] == ("p",) and _LAYER_OPTIONS["sigmoid"] == ()


def test_no_other_module_keeps_a_table_of_layer_classes():
    """build, export, gradcheck and inspect-grads read the registry: none names an activation class itself."""
    import mlpkit

    root = inspect.getfile(mlpkit).rsplit("/", 1)[0]
    for rel in ("training/build.py", "app/export.py", "diagnostics/gradcheck.py", "diagnostics/gradprofile.py"):
        tree = ast.parse(Path(root, rel).read_text())
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert not names & {"Sigmoid", "ReLU", "Tanh"}, rel
