"""The training loop: it learns, it is deterministic, it reports what it measured."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from mlpkit.app import api
from mlpkit.config.validate import config_from_dict
from mlpkit.data.load import load_digits
from mlpkit.errors import DivergenceError
from mlpkit.training import divergence
from mlpkit.training.trainer import Trainer, fit

from ..conftest import CONFIGS


def _cfg(**train):
    return config_from_dict({
        "seed": 3,
        "data": {"dataset": "digits", "validation": 100, "train_eval_samples": 200},
        "model": {"layers": [{"linear": 32}, "sigmoid", {"dropout": 0.2}, {"linear": 10}]},
        "train": {"epochs": 3, "batch_size": 32, "lr": 0.1, "momentum": 0.9, **train},
    })


def test_overfits_50_examples_to_100_percent():
    d = load_digits()
    small = dataclasses.replace(d, x_train=d.x_train[:50], y_train=d.y_train[:50])
    cfg = config_from_dict({
        "data": {"dataset": "digits", "validation": 0},
        "model": {"layers": [{"linear": 64}, "sigmoid", {"linear": 10}]},
        "train": {"epochs": 200, "batch_size": 10, "lr": 0.5},
    })
    t = Trainer(cfg, small)
    fit(t)
    last = t.history[-1]
    assert last.train_eval_acc == 1.0
    assert last.train_eval_loss < 0.05
    assert last.val_loss is None and last.val_acc is None


def test_same_seed_is_bit_identical():
    d = load_digits()
    runs = []
    for _ in range(2):
        t = Trainer(_cfg(), d)
        fit(t)
        runs.append(t)
    a, b = runs
    assert [dataclasses.asdict(m) for m in a.history] == [dataclasses.asdict(m) for m in b.history]
    for k, v in a.model.named_params().items():
        assert v.tobytes() == b.model.named_params()[k].tobytes(), k


def test_different_seed_differs():
    d = load_digits()
    a, b = Trainer(_cfg(), d), Trainer(dataclasses.replace(_cfg(), seed=4), d)
    a.train_epoch(), b.train_epoch()
    assert a.history[0].train_loss != b.history[0].train_loss


def test_epoch_metrics_are_complete_and_sane():
    t = Trainer(_cfg(epochs=2), load_digits())
    steps = []
    times, test = fit(t, on_step=steps.append)
    assert len(times) == 2 and len(t.history) == 2
    assert len(steps) == 2 * t.steps_per_epoch == 2 * int(np.ceil(1337 / 32))
    m = t.history[-1]
    assert set(m.grad_norms) == {"layers.0.W", "layers.0.b", "layers.3.W", "layers.3.b"}
    assert all(v > 0 for v in m.grad_norms.values())
    assert 0 < m.train_loss < np.log(10) + 1 and 0.5 < m.val_acc <= 1 and 0.5 < m.train_eval_acc <= 1
    assert test.n == 360 and 0.5 < test.accuracy <= 1
    assert sum(map(sum, test.confusion)) == 360
    assert test.accuracy == pytest.approx(sum(test.confusion[i][i] for i in range(10)) / 360)


def test_divergence_names_epoch_and_step(monkeypatch):
    cfg = config_from_dict({"model": {"layers": [{"linear": 64}, {"linear": 64}, {"linear": 10}]},
                            "train": {"lr": 1e6}})
    t = Trainer(cfg, load_digits())
    snapshots = []  # the parameters after every completed step, i.e. before the next one

    def snapshot(tr: Trainer) -> bool:
        snapshots.append({k: v.copy() for k, v in tr.model.named_params().items()})
        velocity = tr.optimizer.state_dict()
        snapshots[-1].update({f"v.{k}": v for k, v in velocity.items()})
        return False

    with pytest.raises(DivergenceError, match=r"the loss exploded to [\d.e+]+ at epoch 1, step 2, over 100× that of a "
                       r"uniform guess \(layers.2.W holds weights up to \|w\| = [\d.e+]+\); try a smaller learning rate "
                       r"\(train.lr is 1e\+06\)"):
        fit(t, after_step=snapshot)
    assert len(snapshots) == 1  # step 1 completed, step 2 exploded
    after = dict(t.model.named_params().items())
    after.update({f"v.{k}": v for k, v in t.optimizer.state_dict().items()})
    assert after.keys() == snapshots[0].keys()
    for k, v in after.items():  # the exploding step changed neither the weights nor the optimizer's state
        np.testing.assert_array_equal(v, snapshots[0][k], err_msg=k)
    assert any(not np.array_equal(v, t.model.named_params()[k]) for k, v in _initial(cfg).items())  # step 1 moved
    monkeypatch.setattr(divergence, "EXPLOSION_FACTOR", float("inf"))  # without the rule: NaN a step later
    t = Trainer(cfg, load_digits())
    with pytest.raises(DivergenceError, match=r"at epoch 1, step \d+ \(the output of layers.2 Linear\(64, 10\) "
                       r"overflowed\); try a smaller learning rate"):
        fit(t)


def _initial(cfg) -> dict:
    return {k: v.copy() for k, v in Trainer(cfg, load_digits()).model.named_params().items()}


def test_explosion_rule_is_100_times_a_uniform_guess():
    t = Trainer(config_from_dict({"model": {"layers": [{"linear": 10}]}}), load_digits())
    assert t.explosion_loss == pytest.approx(100 * np.log(10))
    x = np.zeros((4, 64), dtype=np.float32)
    x[:, 0] = 1.0
    t.model.layers[0].params["W"][0] = [1e4] + [0] * 9  # logit 0 is 1e4 higher: loss 1e4 for labels 1..9
    with pytest.raises(DivergenceError, match="the loss exploded to 1e\\+04 at epoch 3, step 7"):
        t.train_step(x, np.array([1, 2, 3, 4]), 3, 7)
    t.model.layers[0].params["W"][0] = [200] + [0] * 9  # loss 200 < 230: training goes on
    assert t.train_step(x, np.array([1, 2, 3, 4]), 3, 8) == pytest.approx(200, rel=1e-3)


def test_run_folder_contents(tmp_path):
    trainer = api.prepare(CONFIGS / "quickstart.yaml", ("train.epochs=2",))
    result = api.train_run(trainer, tmp_path / "run")
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == [".lock", "checkpoints", "config.yaml", "metrics.csv", "metrics.jsonl",
                                                     "model.npz", "results.json", "run.json", "timings.jsonl"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.npz", "last.npz"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert set(rows[0]) == {"epoch", "train_loss", "train_eval_loss", "train_eval_acc", "val_loss", "val_acc",
                            "grad_norms", "lr"}
    assert rows[1]["val_acc"] == result.history[1].val_acc
    # The saved model scores the same as the trained one.
    again, _ = api.evaluate_run(run)
    assert again.accuracy == result.test.accuracy and again.loss == pytest.approx(result.test.loss, rel=1e-6)


def test_quickstart_reaches_95_percent():
    trainer = api.prepare(CONFIGS / "quickstart.yaml")
    result = api.train_run(trainer, None)
    assert result.test.accuracy >= 0.95
