"""SGD: its one step() equals the textbook update (PyTorch's torch.optim.SGD) for every option."""

from __future__ import annotations

import numpy as np
import pytest

from mlpkit.config.validate import config_from_dict
from mlpkit.data.core import Dataset, to_float
from mlpkit.nn import _kernels as blas
from mlpkit.nn.layers import Linear
from mlpkit.nn.model import MLP
from mlpkit.nn.optim import SGD
from mlpkit.nn.reference import sgd_step
from mlpkit.training.build import build_model
from mlpkit.training.rngs import Rngs
from mlpkit.training.schedules import lr_at, momentum_at
from mlpkit.training.trainer import Trainer, iterate_minibatches

LAYERS = [{"linear": 7}, "sigmoid", {"dropout": 0.3}, {"linear": 10}]


def _model(layout="C", layers=LAYERS, d=5, **model_opts):
    cfg = config_from_dict({"model": {"layers": layers, "bias_init": "normal", **model_opts}})
    return build_model(cfg.model, d, np.random.default_rng(1), np.random.default_rng(2), dtype="float64",
                       layout=layout)





@pytest.mark.parametrize("layout", ["C", "F"])
@pytest.mark.parametrize("formed", [False, True], ids=["fused", "formed"])
@pytest.mark.parametrize("momentum,wd", [(0.0, 0.0), (0.9, 0.0), (0.9, 0.01), (0.0, 0.01)])
def test_step_equals_the_textbook_update(layout, formed, momentum, wd):
    """Both routes (the fused GEMM from the gradient's factors, and a gradient already formed) in both
    memory orders give the textbook update, to rounding, over 4 steps with a learning-rate change."""
    rng = np.random.default_rng(0)
    x, y = np.asarray(rng.standard_normal((6, 5)), order=layout), rng.integers(0, 10, 6)
    m = _model(layout)
    opt = SGD(m, lr=0.3, momentum=momentum, weight_decay=wd)
    ref = {k: v.copy() for k, v in m.named_params().items()}
    vel = {k: np.zeros_like(v) for k, v in ref.items()}
    for step in range(4):
        opt.lr = 0.3 if step < 2 else 0.1
        m.loss(x, y)
        m.backward()
        if formed:
            m.named_grads()  # reading forms every dW
        grads = {k: v.copy() for k, v in m.named_grads().items()}
        opt.step()
        ref = sgd_step(ref, grads, vel, opt.lr, momentum, wd)
        for k, v in m.named_params().items():
            np.testing.assert_allclose(v, ref[k], rtol=1e-13, atol=1e-14, err_msg=f"step {step} {k}")
        for k, g in m.named_grads().items():  # the step reads the gradients and leaves them as they were
            np.testing.assert_array_equal(g, grads[k], err_msg=k)


def test_max_norm_is_applied_after_the_update():
    m = _model(max_norm=0.5)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((6, 5)), rng.integers(0, 10, 6)
    opt = SGD(m, lr=0.5, momentum=0.5)
    ref = {k: v.copy() for k, v in m.named_params().items()}
    vel = {k: np.zeros_like(v) for k, v in ref.items()}
    for _ in range(3):
        m.loss(x, y)
        m.backward()
        grads = {k: v.copy() for k, v in m.named_grads().items()}
        opt.step()
        ref = sgd_step(ref, grads, vel, 0.5, 0.5, 0.0, max_norm={"layers.0.W": 0.5})
    for k, v in m.named_params().items():
        np.testing.assert_allclose(v, ref[k], rtol=1e-13, atol=1e-14, err_msg=k)
    assert np.sqrt((m.named_params()["layers.0.W"] ** 2).sum(axis=0)).max() <= 0.5 + 1e-12
    assert np.sqrt((m.named_params()["layers.3.W"] ** 2).sum(axis=0)).max() > 0.5  # the output layer is free


def test_plain_sgd_by_hand():
    """Numbers worked by hand: W − lr·(xᵀ·dY), b − lr·Σ dY."""
    m = MLP([Linear(1, 2, rng=np.random.default_rng(0), dtype=np.float64)], 1)
    m.load_params({"layers.0.W": np.array([[1.0, 2.0]]), "layers.0.b": np.array([0.5, -0.5])})
    m.loss(np.array([[2.0]]), np.array([0]))
    m.backward()
    p = np.exp([2.5, 3.5]) / np.exp([2.5, 3.5]).sum()  # softmax of the logits [2.5, 3.5]
    dz = p - [1.0, 0.0]
    SGD(m, lr=0.1).step()
    np.testing.assert_allclose(m.named_params()["layers.0.W"], [[1.0, 2.0]] - 0.1 * 2.0 * dz[None, :], rtol=1e-15)
    np.testing.assert_allclose(m.named_params()["layers.0.b"], [0.5, -0.5] - 0.1 * dz, rtol=1e-15)


def test_state_round_trip_is_exact():
    m = _model()
    rng = np.random.default_rng(0)
    opt = SGD(m, lr=0.3, momentum=0.9)
    m.loss(rng.standard_normal((6, 5)), rng.integers(0, 10, 6))
    m.backward()
    opt.step()
    state = opt.state_dict()
    assert set(state) == set(m.named_params())
    other = SGD(m, lr=0.3, momentum=0.9)
    other.load_state_dict(state)
    for k, v in state.items():
        assert other.state_dict()[k].tobytes() == v.tobytes()
    with pytest.raises(ValueError, match=r"layers\.9\.W"):
        other.load_state_dict({"layers.9.W": np.zeros(3)})


def test_float32_stays_float32():
    cfg = config_from_dict({"model": {"layers": [{"linear": 10}]}})
    m = build_model(cfg.model, 3, np.random.default_rng(0))
    opt = SGD(m, lr=0.5, momentum=0.5, weight_decay=0.1)
    m.loss(np.ones((4, 3), dtype=np.float32), np.arange(4))
    m.backward()
    opt.step()
    assert {v.dtype for v in m.named_params().values()} == {np.dtype(np.float32)}
    assert {v.dtype for v in opt.velocity.values()} == {np.dtype(np.float32)}


# --------------------------------------------------------------------------- the trainer's steps


def _dataset(n=40, d=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, d), dtype=np.uint8)
    y = rng.integers(0, 10, n)
    return Dataset("tiny", x, y, x[:8], y[:8], 1 / 255, 10, tuple("0123456789"), (d,), "test")


TRAIN_OPTIONS = {
    "plain": {},
    "momentum": {"momentum": 0.9},
    "weight_decay": {"momentum": 0.5, "weight_decay": 0.05},
    "l2": {"l2": 2.0},
    "step": {"lr_schedule": "step", "lr_decay": 0.5, "lr_step": 2, "momentum": 0.9},
    "exponential": {"lr_schedule": "exponential", "lr_decay": 0.7},
    "cosine": {"lr_schedule": "cosine", "lr_min": 0.01, "momentum": 0.9},
    "momentum_ramp": {"momentum": 0.9, "momentum_start": 0.5, "momentum_ramp_epochs": 3},
    "max_norm": {"momentum": 0.9},
}


@pytest.mark.parametrize("batch", [4, 32], ids=["column-major", "narrow-layers-row-major"])  # build.weight_order
@pytest.mark.parametrize("option", list(TRAIN_OPTIONS))
def test_trainer_epochs_equal_the_textbook_loop(option, batch):
    """Every training option: the real trainer over 4 epochs (float64) against the textbook loop on the
    same initial weights, batches and dropout masks."""
    model_opts = {"max_norm": 0.3} if option == "max_norm" else {}
    cfg = config_from_dict({
        "seed": 3, "data": {"validation": 8},
        "model": {"layers": LAYERS, "dtype": "float64", **model_opts},
        "train": {"epochs": 4, "batch_size": batch, "lr": 0.5, **TRAIN_OPTIONS[option]},
    })
    data = _dataset()
    trainer = Trainer(cfg, data)
    rngs = Rngs.from_seed(cfg.seed)
    layout = trainer.model.layout  # dropout masks are drawn in the memory order of their input
    ref = build_model(cfg.model, 5, rngs.init, rngs.dropout, layout=layout, batch_size=batch)
    want = "C" if batch >= 32 else "F"  # the 7- and 10-unit layers: row-major at batch 32 (build.weight_order)
    assert [blas.order_of(layer.params["W"]) for _, layer in trainer.model.linear_layers()] == [want, want]
    params = {k: v.copy() for k, v in ref.named_params().items()}
    vel = {k: np.zeros_like(v) for k, v in params.items()}
    n_train = len(trainer.train_split)
    wd = cfg.train.weight_decay or cfg.train.l2 / n_train
    caps = {"layers.0.W": 0.3} if option == "max_norm" else None
    x, y = data.x_train[:n_train], data.y_train[:n_train]
    for epoch in range(4):
        trainer.train_epoch()
        lr, mu = lr_at(cfg.train, epoch), momentum_at(cfg.train, epoch)
        for idx in iterate_minibatches(n_train, batch, rngs.shuffle):
            ref.load_params(params)
            ref.loss(to_float(x[idx], data.scale, np.float64, layout), y[idx])
            ref.backward()
            params = sgd_step(params, {k: v.copy() for k, v in ref.named_grads().items()}, vel, lr, mu, wd, caps)
        for k, v in trainer.model.named_params().items():
            np.testing.assert_allclose(v, params[k], rtol=1e-11, atol=1e-13, err_msg=f"{option} epoch {epoch} {k}")


def test_grads_hold_the_steps_gradients_after_a_training_step():
    """The layer contract while training: after Trainer.train_step every grads entry is dL/dparam of that
    step's minibatch loss (float64, against a separately built model's backward)."""
    cfg = config_from_dict({"model": {"layers": LAYERS, "dtype": "float64"}, "train": {"batch_size": 16}})
    trainer = Trainer(cfg, _dataset())
    m = trainer.model
    rng = np.random.default_rng(5)
    x, y = np.asfortranarray(rng.standard_normal((16, 5))), rng.integers(0, 10, 16)
    before = {k: v.copy() for k, v in m.named_params().items()}
    state = m.layers[2].rng.bit_generator.state
    trainer.train_step(x, y)
    ref = build_model(cfg.model, 5, np.random.default_rng(0), np.random.default_rng(0))
    ref.load_params(before)
    ref.layers[2].rng.bit_generator.state = state  # the same dropout mask
    ref.loss(x, y)
    ref.backward()
    expected = ref.named_grads()
    for k, g in m.named_grads().items():
        np.testing.assert_allclose(g, expected[k], rtol=1e-13, atol=1e-15, err_msg=k)
        assert np.abs(g).max() > 0, k


@pytest.mark.parametrize("batch", [3, 40])  # the Gram route and the formed-gradient route
def test_grad_sqnorm_without_forming_the_gradient(batch):
    m = _model(layers=[{"linear": 16}, "sigmoid", {"linear": 10}], d=12)
    rng = np.random.default_rng(0)
    m.loss(rng.standard_normal((batch, 12)), rng.integers(0, 10, batch))
    m.backward()
    values = {name: layer.grad_sqnorm(k) for name, layer, k in m.parameters()}
    for name, g in m.named_grads().items():
        assert values[name] == pytest.approx(np.sum(g**2), rel=1e-12), name
