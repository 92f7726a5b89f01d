"""Schedules, Nielsen's L2, max-norm constraints, input dropout."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlpkit.config.validate import config_from_dict
from mlpkit.data.load import load_digits
from mlpkit.errors import ConfigError
from mlpkit.training.build import build_model
from mlpkit.training.schedules import lr_at, momentum_at
from mlpkit.training.trainer import Trainer


def _train(**kw):
    return config_from_dict({"model": {"layers": [{"linear": 10}]}, "train": {"epochs": 10, "lr": 0.5, **kw}}).train


def test_lr_schedules():
    assert [lr_at(_train(), e) for e in (0, 9)] == [0.5, 0.5]
    t = _train(lr_schedule="step", lr_decay=0.1, lr_step=4)
    assert [lr_at(t, e) for e in (0, 3, 4, 8)] == pytest.approx([0.5, 0.5, 0.05, 0.005])
    t = _train(lr_schedule="exponential", lr_decay=0.9)
    assert lr_at(t, 3) == pytest.approx(0.5 * 0.9**3)
    t = _train(lr_schedule="cosine", lr_min=0.1)
    assert lr_at(t, 0) == pytest.approx(0.5)
    assert lr_at(t, 4) == pytest.approx(0.1 + 0.4 * 0.5 * (1 + math.cos(math.pi * 4 / 10)))
    assert lr_at(_train(lr_schedule="cosine"), 9) > 0  # the last epoch still learns


def test_momentum_ramp():
    t = _train(momentum=0.9, momentum_start=0.5, momentum_ramp_epochs=4)
    assert [momentum_at(t, e) for e in (0, 2, 4, 7)] == pytest.approx([0.5, 0.7, 0.9, 0.9])
    assert momentum_at(_train(momentum=0.9), 0) == 0.9


def test_trainer_applies_the_schedule_per_epoch():
    cfg = config_from_dict({"data": {"validation": 100}, "model": {"layers": [{"linear": 10}]},
                            "train": {"epochs": 3, "lr": 0.5, "lr_schedule": "step", "lr_decay": 0.5}})
    t = Trainer(cfg, load_digits())
    for _ in range(3):
        t.train_epoch()
    assert [m.lr for m in t.history] == [0.5, 0.25, 0.125]


def test_l2_is_weight_decay_over_n():
    cfg = config_from_dict({"data": {"validation": 437}, "model": {"layers": [{"linear": 10}]},
                            "train": {"l2": 5.0}})
    assert Trainer(cfg, load_digits()).optimizer.weight_decay == pytest.approx(5.0 / 1000)
    with pytest.raises(ConfigError, match=r"train\.l2: set train\.l2 .* or train\.weight_decay, not both"):
        config_from_dict({"model": {"layers": [{"linear": 10}]}, "train": {"l2": 5.0, "weight_decay": 1e-4}})


def test_max_norm_caps_hidden_columns_only():
    cfg = config_from_dict({"model": {"init": "normal", "init_std": 3.0, "max_norm": 2.0,
                                      "layers": [{"linear": 20}, "sigmoid", {"linear": {"out_features": 15,
                                                                                       "max_norm": 1.0}},
                                                 "sigmoid", {"linear": 10}]}})
    m = build_model(cfg.model, 30, np.random.default_rng(0))
    before = {k: v.copy() for k, v in m.named_params().items()}
    for layer in m.layers:
        layer.apply_constraints()
    w0, w2, w4 = (m.named_params()[f"layers.{i}.W"] for i in (0, 2, 4))
    assert np.linalg.norm(w0, axis=0).max() == pytest.approx(2.0, rel=1e-6)
    assert np.linalg.norm(w2, axis=0).max() == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_array_equal(w4, before["layers.4.W"])  # the output layer is not constrained
    ok = np.linalg.norm(before["layers.0.W"], axis=0) <= 2.0
    np.testing.assert_array_equal(w0[:, ok], before["layers.0.W"][:, ok])  # columns under the cap untouched
    assert "max_norm=2" in repr(m.layers[0])


def test_input_dropout_needs_no_backward_below_the_first_linear():
    cfg = config_from_dict({"model": {"layers": [{"dropout": 0.2}, {"linear": 8}, "sigmoid", {"linear": 10}]}})
    m = build_model(cfg.model, 6, np.random.default_rng(0), np.random.default_rng(1), dtype="float64")
    x, y = np.random.default_rng(2).standard_normal((5, 6)), np.arange(5)
    state = m.layers[0].rng.bit_generator.state
    m.loss(x, y)
    assert m.backward() is None
    g1 = {k: v.copy() for k, v in m.named_grads().items()}
    m.layers[0].rng.bit_generator.state = state
    m.loss(x, y)
    assert m.backward(need_dx=True).shape == (5, 6)
    for k, v in m.named_grads().items():
        np.testing.assert_array_equal(v, g1[k])
