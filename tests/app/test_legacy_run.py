"""A run folder written before the package move (mlpkit at commit 77402fe, flat modules) still evaluates and
resumes, to the same bits a new run gives.

``legacy_run/`` was made by that code with
``mlpkit train configs/quickstart.yaml --set train.epochs=2 --set 'model.layers[0].linear=16'`` (digits: 88 KB).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from mlpkit.app import api
from mlpkit.app.cli import app

LEGACY = Path(__file__).parent / "legacy_run"
runner = CliRunner()


def _copy(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(LEGACY, run)
    return run


def test_a_legacy_run_scores_as_it_did(tmp_path):
    run = _copy(tmp_path)
    recorded = json.loads((run / "results.json").read_text())["test"]
    result, _ = api.evaluate_run(run)
    assert result.accuracy == recorded["accuracy"] and result.confusion == recorded["confusion"]
    assert abs(result.loss - recorded["loss"]) <= 1e-12 * abs(recorded["loss"])
    r = runner.invoke(app, ["evaluate", str(run), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["accuracy"] == recorded["accuracy"]


def test_a_legacy_run_resumes_to_the_bits_of_a_new_run(tmp_path):
    run = _copy(tmp_path)
    r = runner.invoke(app, ["train", "--resume", str(run), "--set", "train.epochs=3", "-q"])
    assert r.exit_code == 0, r.output
    fresh = tmp_path / "fresh"
    r = runner.invoke(app, ["train", str(run / "config.yaml"), "--set", "train.epochs=3", "--out", str(fresh), "-q"])
    assert r.exit_code == 0, r.output
    a, b = np.load(run / "model.npz"), np.load(fresh / "model.npz")
    names = [k for k in a.files if k.startswith("layers.")]
    assert names == sorted(k for k in b.files if k.startswith("layers.")) and len(names) == 4
    for k in names:
        assert a[k].tobytes() == b[k].tobytes(), k
    assert (run / "metrics.jsonl").read_bytes() == (fresh / "metrics.jsonl").read_bytes()
