"""SGD update rule against hand computation (PyTorch's torch.optim.SGD semantics)."""

from __future__ import annotations

import numpy as np
import pytest

from mlpkit.model import FlatParams
from mlpkit.optim import SGD


def _store(**arrays):
    return FlatParams.adopt({k.replace("_", "."): np.array(v, dtype=np.float64) for k, v in arrays.items()})


def _set_grads(flat, opt, **grads):
    """Gradients as the trainer provides them: multiplied by the optimizer's backward scale."""
    for k, v in grads.items():
        flat.grad_view(k.replace("_", "."))[...] = np.array(v) * opt.backward_scale


def test_layout_weights_first_and_views():
    flat = _store(l0_W=[[1.0, 2.0]], l0_b=[3.0], l1_W=[[4.0]], l1_b=[5.0])
    np.testing.assert_array_equal(flat.data, [1, 2, 4, 3, 5])
    assert flat.weight_slices == [slice(0, 3)]
    flat.view("l1.b")[...] = 9
    assert flat.data[4] == 9


def test_plain_sgd():
    flat = _store(l0_W=[1.0, 2.0], l0_b=[0.5])
    opt = SGD(flat, lr=0.1)
    _set_grads(flat, opt, l0_W=[0.5, -1.0], l0_b=[2.0])
    opt.step()
    np.testing.assert_allclose(flat.view("l0.W"), [0.95, 2.1])
    np.testing.assert_allclose(flat.view("l0.b"), [0.3])


def test_momentum_and_weight_decay_two_steps():
    flat = _store(l_W=[1.0], l_b=[1.0])
    opt = SGD(flat, lr=0.1, momentum=0.9, weight_decay=0.01)
    _set_grads(flat, opt, l_W=[1.0], l_b=[1.0])
    opt.step()
    # W: g' = 1 + 0.01*1 = 1.01; v = 1.01; W = 1 - 0.101 = 0.899. b not decayed: v = 1; b = 0.9
    np.testing.assert_allclose(flat.view("l.W"), [0.899])
    np.testing.assert_allclose(flat.view("l.b"), [0.9])
    _set_grads(flat, opt, l_W=[1.0], l_b=[1.0])
    opt.step()
    # W: g' = 1 + 0.00899 = 1.00899; v = 0.9*1.01 + 1.00899 = 1.91799; W = 0.899 - 0.191799
    np.testing.assert_allclose(flat.view("l.W"), [0.899 - 0.191799])
    np.testing.assert_allclose(flat.view("l.b"), [0.9 - 0.19])
    assert set(opt.state_dict()) == {"l.W", "l.b"}


def test_changing_lr_keeps_pytorch_semantics():
    """v = mu v + g; W -= lr_t v, even though the velocity is stored scaled by lr."""
    flat = _store(l_W=[0.0])
    opt = SGD(flat, lr=0.1, momentum=0.5)
    _set_grads(flat, opt, l_W=[1.0])
    opt.step()  # v = 1, W = -0.1
    opt.lr = 0.01
    _set_grads(flat, opt, l_W=[1.0])
    opt.step()  # v = 1.5, W = -0.1 - 0.015
    np.testing.assert_allclose(flat.view("l.W"), [-0.115])


def test_state_round_trip_is_exact():
    flat = _store(l_W=np.linspace(0, 1, 7))
    opt = SGD(flat, lr=0.3, momentum=0.9)
    _set_grads(flat, opt, l_W=np.linspace(1, 2, 7))
    opt.step()
    state = opt.state_dict()
    other = SGD(flat, lr=0.3, momentum=0.9)
    other.load_state_dict(state)
    assert other.state_dict()["l.W"].tobytes() == state["l.W"].tobytes()


def test_float32_stays_float32():
    flat = FlatParams.adopt({"a.W": np.ones(3, dtype=np.float32)})
    opt = SGD(flat, lr=0.5, momentum=0.5)
    flat.grad[...] = 0.5  # lr · 1
    opt.step()
    assert flat.data.dtype == np.float32
    np.testing.assert_array_equal(flat.data, [0.5, 0.5, 0.5])
    with pytest.raises(AttributeError):
        opt.backward_scale = 2.0  # read-only


@pytest.mark.parametrize("momentum,wd", [(0.0, 0.0), (0.9, 0.0), (0.9, 0.01), (0.0, 0.01)])
def test_fused_steps_agree_across_layouts_and_with_plain_sgd(momentum, wd):
    """The fused GEMM update (column- or row-major) equals the textbook update on formed gradients."""
    from mlpkit.config import config_from_dict
    from mlpkit.model import build_model

    cfg = config_from_dict({"model": {"layers": [{"linear": 7}, "sigmoid", {"linear": 10}], "bias_init": "normal"}})
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 5)), rng.integers(0, 10, 6)
    models = {lay: build_model(cfg.model, 5, np.random.default_rng(1), dtype="float64", layout=lay) for lay in "FC"}
    ref = build_model(cfg.model, 5, np.random.default_rng(1), dtype="float64")
    opts = {lay: SGD(m.flat, lr=0.3, momentum=momentum, weight_decay=wd) for lay, m in models.items()}
    ref_p = {k: v.copy() for k, v in ref.named_params().items()}
    vel = {k: np.zeros_like(v) for k, v in ref_p.items()}
    for step in range(4):
        for lay, m in models.items():
            m.loss(x, y)
            m.backward(scale=0.3, defer_dW=True)
            opts[lay].step_fused([(f"layers.{i}.W", layer) for i, layer in m.linear_layers()], measure=step == 2)
        ref.load_params(ref_p)
        ref.loss(x, y)
        ref.backward()
        for k, g in ref.named_grads().items():  # PyTorch's rule, written out
            g = g + (wd * ref_p[k] if k.endswith(".W") else 0)
            vel[k] = momentum * vel[k] + g if momentum else g
            ref_p[k] = ref_p[k] - 0.3 * vel[k]
    for lay, m in models.items():
        for k, v in m.named_params().items():
            np.testing.assert_allclose(v, ref_p[k], rtol=1e-12, atol=1e-12, err_msg=f"{lay} {k}")


@pytest.mark.parametrize("batch", [3, 40])  # the Gram route and the formed-gradient route
def test_fused_step_measures_the_gradient_norms(batch):
    """step_fused(measure=True) returns ‖lr·g‖² of every parameter, as the formed gradients give."""
    from mlpkit.config import config_from_dict
    from mlpkit.model import build_model

    cfg = config_from_dict({"model": {"layers": [{"linear": 16}, "sigmoid", {"linear": 10}]}})
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((batch, 12)), rng.integers(0, 10, batch)
    m = build_model(cfg.model, 12, np.random.default_rng(1), dtype="float64")
    ref = build_model(cfg.model, 12, np.random.default_rng(1), dtype="float64")
    ref.loss(x, y)
    ref.backward()
    m.loss(x, y)
    m.backward(scale=0.3, defer_dW=True)
    sq = SGD(m.flat, lr=0.3).step_fused([(f"layers.{i}.W", layer) for i, layer in m.linear_layers()], measure=True)
    for name, value in zip(m.flat.names, sq):
        assert value == pytest.approx(np.sum((0.3 * ref.named_grads()[name]) ** 2), rel=1e-12), name
