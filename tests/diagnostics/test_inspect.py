"""inspect-grads (vanishing gradients) and inspect-dropout (the two modes of dropout)."""

from __future__ import annotations

import itertools
import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from mlpkit.app import api
from mlpkit.app.cli import app
from mlpkit.config.validate import config_from_dict
from mlpkit.data.load import load_digits
from mlpkit.diagnostics.dropoutreport import dropout_report
from mlpkit.diagnostics.gradprofile import grad_profile, grad_snapshot
from mlpkit.training.build import build_model
from mlpkit.training.rngs import Rngs
from mlpkit.training.trainer import Trainer

from ..conftest import CONFIGS, MNIST_DIR, needs_mnist

runner = CliRunner()


def _hidden_db(snapshot):
    """‖db‖ of the hidden Linear layers, input to output (the output layer left out)."""
    return [s.db_norm for s in snapshot.linear[:-1]]


# --------------------------------------------------------------------------- gradient profile


def test_snapshot_matches_hand_computed_mean_gradient():
    cfg = config_from_dict({"model": {"layers": [{"linear": 5}, "sigmoid", {"linear": 10}]}})
    m = build_model(cfg.model, 4, np.random.default_rng(0), dtype="float64")
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((8, 4)), rng.integers(0, 10, 8)
    snap = grad_snapshot(m, x, y, 0)
    m.loss(x, y)
    m.backward()
    db0 = m.layers[0].grads["b"]
    assert snap.linear[0].db_norm == pytest.approx(np.linalg.norm(db0), rel=1e-12)
    assert snap.linear[0].db_rms == pytest.approx(np.linalg.norm(db0) / np.sqrt(5), rel=1e-12)
    assert snap.linear[0].db_ratio == 1.0  # layer 0 is the last hidden layer
    assert snap.linear[1].dW_norm == pytest.approx(np.linalg.norm(m.layers[2].grads["W"]), rel=1e-12)
    s = 1 / (1 + np.exp(-(x @ m.layers[0].params["W"] + m.layers[0].params["b"])))
    act = snap.activations[0]
    assert act.kind == "sigmoid" and act.mean_derivative == pytest.approx((s * (1 - s)).mean(), rel=1e-9)
    assert act.mean_derivative <= 0.25


def test_profile_has_a_snapshot_per_epoch():
    t = Trainer(config_from_dict({"data": {"validation": 100}, "model": {"layers": [{"linear": 16}, "sigmoid",
                                                                                      {"linear": 10}]}}),
                load_digits())
    p = grad_profile(t, 2, probe=300)
    assert [s.epoch for s in p.snapshots] == [0, 1, 2] and p.probe == 300 and len(p.history) == 2


def _deep(act, init, bias_init, k=4):
    layers = []
    for _ in range(k):
        layers += [{"linear": 30}, act]
    return {"data": {"dataset": "mnist"}, "model": {"init": init, "bias_init": bias_init,
                                                    "layers": layers + [{"linear": 10}]}}


@needs_mnist
def test_vanishing_sigmoid_at_initialization():
    trainer = api.prepare(CONFIGS / "vanishing-sigmoid.yaml", data=str(MNIST_DIR))
    db = _hidden_db(grad_profile(trainer, 0).snapshots[0])
    assert len(db) == 4
    assert db[0] < db[1] < db[2] < db[3], db
    assert db[3] / db[0] > 20, db
    for a, b in itertools.pairwise(db):
        assert b / a > 2.5, db  # each layer several times slower than the next


@needs_mnist
def test_relu_twin_stays_flat():
    trainer = api.prepare(CONFIGS / "vanishing-relu.yaml", data=str(MNIST_DIR))
    db = _hidden_db(grad_profile(trainer, 0).snapshots[0])
    ratios = [b / a for a, b in itertools.pairwise(db)]
    assert not all(r >= 2 for r in ratios), ratios  # no monotone decay of 2x or more per layer
    assert max(db) / min(db) < 3, db


# --------------------------------------------------------------------------- dropout report


def _dropout_model():
    cfg = config_from_dict({"model": {"layers": [{"linear": 200}, "sigmoid", {"dropout": 0.5}, {"linear": 100},
                                                 "relu", {"dropout": 0.2}, {"linear": 10}]}})
    rngs = Rngs.from_seed(0)
    return build_model(cfg.model, 64, rngs.init, rngs.dropout)


def test_dropout_report_rates_and_means():
    m = _dropout_model()
    d = load_digits()
    x = (d.x_train[:1000] / 16).astype(np.float32)
    r = dropout_report(m, x, d.y_train[:1000], passes=5)
    assert [s.layer for s in r.layers] == ["layers.2", "layers.5"]
    for s, p in zip(r.layers, (0.5, 0.2)):
        assert s.p == p and s.keep == 1 - p
        assert s.units == 1000 * (200 if p == 0.5 else 100)
        assert abs(s.drop_rate - p) < 4 * s.drop_rate_sigma, s
        assert abs(s.ratio - 1) < 0.02, s
    assert r.examples == 1000 and r.passes == 5
    assert 0 <= r.mc_agreement <= 1 and r.mc_prob_std > 0


def test_inference_mode_is_deterministic_training_mode_is_not():
    m = _dropout_model()
    x = np.random.default_rng(0).random((50, 64)).astype(np.float32)
    m.eval()
    a, b = m.forward(x), m.forward(x)
    assert np.array_equal(a, b)
    m.train()
    c, e = m.forward(x), m.forward(x)
    assert not np.array_equal(c, e)


def test_report_leaves_mode_alone():
    m = _dropout_model().eval()
    dropout_report(m, np.ones((4, 64), np.float32), np.zeros(4, int), passes=2)
    assert not m.training and not any(layer.training for layer in m.layers)


# --------------------------------------------------------------------------- command line


def test_inspect_grads_cli_json():
    r = runner.invoke(app, ["inspect-grads", str(CONFIGS / "quickstart.yaml"), "--epochs", "2", "--probe", "500",
                            "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert [s["epoch"] for s in data["snapshots"]] == [0, 1, 2] and data["probe"] == 500
    assert [s["layer"] for s in data["snapshots"][0]["linear"]] == ["layers.0", "layers.3"]
    assert data["snapshots"][0]["activations"][0]["kind"] == "sigmoid"


def test_inspect_grads_cli_text_has_bars():
    r = runner.invoke(app, ["inspect-grads", str(CONFIGS / "quickstart.yaml"), "--epochs", "1"])
    assert r.exit_code == 0
    assert "log scale" in r.output and "█" in r.output and "mean derivative" in r.output
    assert "epoch 0" in r.output and "epoch 1" in r.output


def test_inspect_grads_on_a_saved_run(tmp_path):
    r = runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--set", "train.epochs=2", "--out",
                            str(tmp_path / "run"), "-q", "--json"])
    assert r.exit_code == 0
    r = runner.invoke(app, ["inspect-grads", str(tmp_path / "run"), "--json"])
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert len(data["snapshots"]) == 1
    r = runner.invoke(app, ["inspect-dropout", str(tmp_path / "run"), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["layers"][0]["p"] == 0.2


def test_plot_without_matplotlib_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    r = runner.invoke(app, ["inspect-grads", str(CONFIGS / "quickstart.yaml"), "--plot", str(tmp_path / "g.png")])
    assert r.exit_code == 2
    assert "pip install 'mlpkit[plot]'" in r.output and "Traceback" not in r.output


def test_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "g.png"
    r = runner.invoke(app, ["inspect-grads", str(CONFIGS / "quickstart.yaml"), "--epochs", "1", "--plot", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_bad_path(tmp_path):
    pytest.importorskip("matplotlib")
    r = runner.invoke(app, ["inspect-grads", str(CONFIGS / "quickstart.yaml"), "--plot", str(tmp_path / "g.txt")])
    assert r.exit_code == 2 and "must end in .png, .svg or .pdf" in r.output


def test_inspect_dropout_cli():
    r = runner.invoke(app, ["inspect-dropout", str(CONFIGS / "quickstart.yaml"), "--epochs", "3", "--passes", "4",
                            "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["passes"] == 4 and data["examples"] == 360
    assert set(data["train_mode"]) == {"loss", "accuracy"}
    r = runner.invoke(app, ["inspect-dropout", str(CONFIGS / "quickstart.yaml"), "--epochs", "1"])
    assert "p (drop)" in r.output and "keep 1−p" in r.output and "inference (dropout off)" in r.output


def test_inspect_dropout_without_dropout_layers():
    r = runner.invoke(app, ["inspect-dropout", str(CONFIGS / "quickstart.yaml"), "--epochs", "0", "--set",
                            "model.layers[2]=tanh"])
    assert r.exit_code == 0 and "has no Dropout layer" in r.output


def test_validation_split_missing_is_exit_2():
    r = runner.invoke(app, ["inspect-dropout", str(CONFIGS / "quickstart.yaml"), "--epochs", "0", "--split",
                            "validation", "--set", "data.validation=0"])
    assert r.exit_code == 2 and "there is no validation split" in r.output


@needs_mnist
def test_inspect_grads_mnist_cli():
    r = runner.invoke(app, ["inspect-grads", str(CONFIGS / "vanishing-sigmoid.yaml"), "--data-dir", str(MNIST_DIR),
                            "--epochs", "1", "--json"])
    assert r.exit_code == 0
    db = [s["db_norm"] for s in json.loads(r.stdout)["snapshots"][0]["linear"][:-1]]
    assert db == sorted(db) and db[3] / db[0] > 20


@pytest.mark.parametrize("epoch", [99, -1, "2", None])
def test_inspect_grads_labels_a_checkpoints_epoch_only_when_the_file_proves_it(tmp_path, epoch):
    """Issue 23, item 21: a checkpoint whose epoch was wrong or missing was labelled "epoch 99" / "epoch 0"."""
    from mlpkit.data.npz import npz_bytes, read_npz
    from mlpkit.errors import DataError

    run = tmp_path / "run"
    r = runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "2", "--out", str(run), "-q"])
    assert r.exit_code == 0
    ck = run / "checkpoints" / "last.npz"
    arrays = read_npz(ck, DataError, "a checkpoint")
    meta = json.loads(str(arrays["__meta__"]))
    if epoch is None:
        del meta["trainer"]["epoch"]
    else:
        meta["trainer"]["epoch"] = epoch
    arrays["__meta__"] = np.array(json.dumps(meta))
    ck.write_bytes(npz_bytes(arrays))
    r = runner.invoke(app, ["inspect-grads", str(ck), "-q"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    assert "trained weights (epoch unknown: the file does not prove it)" in r.output
    r = runner.invoke(app, ["inspect-grads", str(run), "-q"], env={"COLUMNS": "200"})  # model.npz: 2 metric rows
    assert r.exit_code == 0 and "trained weights (epoch 2)" in r.output


# --------------------------------------------------------------------------- several targets, one scale

TWINS = [str(CONFIGS / "vanishing-sigmoid.yaml"), str(CONFIGS / "vanishing-relu.yaml")]
ON_DIGITS = ["--set", "data.dataset=digits", "--set", "data.validation=200", "--probe", "300"]


def test_two_configs_share_one_scale_and_their_ratios_sit_side_by_side(monkeypatch):
    """Issue 24: sigmoid's bars were drawn from 1e-4 to 1e0 and ReLU's from 1e-3 to 1e-1, each on its own
    scale. Given both, one scale holds every value of both, and a bar's length depends on its value only."""
    r = runner.invoke(app, ["inspect-grads", *TWINS, *ON_DIGITS, "--epochs", "1", "-q", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["norm"] == "db" and data["norm_label"].startswith("‖db‖: Nielsen's speed of learning")
    values = [s["db_norm"] for p in data["profiles"] for snap in p["snapshots"] for s in snap["linear"]]
    lo, hi = data["lo"], data["hi"]
    assert lo <= min(values) and max(values) <= hi and lo < hi
    assert np.log10(lo).is_integer() and np.log10(hi).is_integer() and min(values) < 10 * lo
    assert [p["description"].split(":")[0] for p in data["profiles"]] == ["vanishing-sigmoid", "vanishing-relu"]
    monkeypatch.setenv("COLUMNS", "100")
    r = runner.invoke(app, ["inspect-grads", *TWINS, *ON_DIGITS, "--epochs", "1", "-q"])
    assert r.exit_code == 0
    assert f"‖db‖ per Linear layer, input → output, on one log scale from {lo:.0e} to {hi:.0e}" in r.output
    assert "ratio to the last hidden layer, side by side" in r.output and "after epoch 1" in r.output
    bars = {}
    for line in r.output.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in ("vanishing-sigmoid", "vanishing-relu") and parts[-1].startswith("×"):
            bars.setdefault(parts[0], []).append((line.count("█"), float(parts[-2])))
    pairs = [pair for rows in bars.values() for pair in rows]
    assert len(pairs) == 2 * 2 * 5  # two configs, two snapshots, five Linear layers
    for full, value in pairs:  # one scale: the bar is log10(value) placed between log10(lo) and log10(hi)
        width = max(10, min(40, 100 - len("vanishing-sigmoid") - 22))
        assert abs(full - width * (np.log10(value) - np.log10(lo)) / (np.log10(hi) - np.log10(lo))) <= 1


def test_the_reading_explains_training_from_its_measurements():
    r = runner.invoke(app, ["inspect-grads", TWINS[0], *ON_DIGITS, "--epochs", "2", "-q", "--json"])
    reading = json.loads(r.stdout)["reading"]
    snaps = json.loads(r.stdout)["snapshots"]
    ratios = [s["linear"][-2]["db_norm"] / s["linear"][0]["db_norm"] for s in snaps]
    assert f"divided by the first's was {', '.join(f'{v:.3g}' for v in ratios)} at epochs 0–2" in reading
    w = "/".join(f"{s['W_rms']:.2g}" for s in snaps[-1]["linear"][1:-1])
    assert f"→ {w})" in reading and "Nielsen's unstable gradient (ch. 5)" in reading


def test_norm_dw_is_named_and_used(tmp_path):
    r = runner.invoke(app, ["inspect-grads", *TWINS, *ON_DIGITS, "--epochs", "0", "--norm", "dW", "-q"],
                      env={"COLUMNS": "120"})
    assert r.exit_code == 0 and "‖dW‖ per Linear layer" in r.output and "it also grows with the layer's fan-in" in r.output
    out = tmp_path / "twins.png"
    r = runner.invoke(app, ["inspect-grads", *TWINS, *ON_DIGITS, "--epochs", "1", "-q", "--plot", str(out)])
    assert r.exit_code == 0 and out.read_bytes()[:4] == b"\x89PNG"
