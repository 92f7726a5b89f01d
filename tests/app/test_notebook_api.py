"""mlpkit from Python: ``mlpkit.train`` and ``mlpkit.load`` give a Run whose results are dataclasses."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mlpkit
from mlpkit.app.predict import Predictions
from mlpkit.errors import ConfigError
from mlpkit.training.metrics import EpochMetrics, EvalResult

from ..conftest import CONFIGS

Q = CONFIGS / "quickstart.yaml"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return mlpkit.train(Q, out=tmp_path_factory.mktemp("nb") / "run", epochs=2, lr=0.05, train__momentum=0.8)


def test_train_returns_a_run_of_dataclasses(run):
    assert isinstance(run, mlpkit.Run) and run.status == "finished"
    assert [type(m) for m in run.history] == [EpochMetrics, EpochMetrics]
    cfg = json.loads(json.dumps(__import__("yaml").safe_load((run.path / "config.yaml").read_text())))
    assert cfg["train"]["lr"] == 0.05 and cfg["train"]["momentum"] == 0.8 and cfg["train"]["epochs"] == 2
    result = run.evaluate()
    assert isinstance(result, EvalResult) and result.accuracy == run.test["accuracy"]
    assert repr(run) == f"Run({str(run.path)!r}: finished, 2 epochs, test accuracy {100 * result.accuracy:.2f} %)"


def test_predict_takes_arrays_and_files(run, tmp_path):
    from mlpkit.data.load import load_digits

    d = load_digits()
    images = d.x_test[:5].reshape(-1, 8, 8).astype(np.uint8) * 16  # 0..255, the model's size: used as given
    p = run.predict(images)
    assert isinstance(p, Predictions) and len(p.items) == 5 and not any(i.prepared for i in p.items)
    np.save(tmp_path / "five.npy", images)
    assert [i.top[0].label for i in run.predict(tmp_path / "five.npy").items] == [i.top[0].label for i in p.items]


def test_load_gives_the_same_run_and_train_continues_like_resume(run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run.path, copy)
    loaded = mlpkit.load(copy)
    assert loaded.history == run.history
    loaded.train(epochs=3)
    straight = mlpkit.train(Q, out=tmp_path / "straight", epochs=3, lr=0.05, train__momentum=0.8)
    assert loaded.history == straight.history  # bit-identical, as --resume
    assert (copy / "model.npz").read_bytes() == (tmp_path / "straight" / "model.npz").read_bytes()


def test_report_and_the_notebook_view(run, tmp_path):
    out = run.report(tmp_path / "r.html")
    assert out.read_text().startswith("<!doctype html>")
    view = run._repr_html_()
    assert "<table>" in view and "<svg" in view and "test accuracy" in view


def test_bad_overrides_and_folders_are_one_sentence(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.lrr \(set by --set\): unknown key \(did you mean 'lr'\?\)"):
        mlpkit.train(Q, out=tmp_path / "x", train__lrr=0.1)
    with pytest.raises(ConfigError, match=r"model\.layers\[2\]\.dropout \(set by --set\): must be in \[0, 1\)"):
        mlpkit.train(Q, out=tmp_path / "y", **{"model.layers[2].dropout": 1.5})
    with pytest.raises(Exception, match="is not an mlpkit run folder"):
        mlpkit.load(tmp_path)
