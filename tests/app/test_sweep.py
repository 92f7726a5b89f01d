"""mlpkit sweep on Optuna (SQLite in the sweep folder): checked sweep files, trials as run folders, a budget
that reruns continue, several workers, the best trial exported bit-identically, a worker killed mid-trial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlpkit.app.cli import app

from ..conftest import CONFIGS, ROOT

pytest.importorskip("optuna")
runner = CliRunner()


def _sweep(folder: Path, text: str, name: str = "s") -> Path:
    base = folder / "base.yaml"
    base.write_text((CONFIGS / "quickstart.yaml").read_text().replace("epochs: 40", "epochs: 2"))
    p = folder / f"{name}.yaml"
    p.write_text("base: base.yaml\n" + text)
    return p


SPACE = "space:\n  train.lr: {low: 0.02, high: 0.5, log: true}\n  model.layers[0].linear: {choices: [16, 32]}\n"


@pytest.mark.parametrize("text,expect", [
    ("trails: 3\n" + SPACE, "trails: unknown key (did you mean 'trials'?); expected one of base, set, objective"),
    ("space:\n  train.lrr: {low: 0.1, high: 0.5}\n", "train.lrr (set by --set): unknown key (did you mean 'lr'?)"),
    ("space:\n  train.lr: {low: 0.5, high: 0.1}\n", "space.train.lr: low must be below high, got 0.5 and 0.1"),
    ("space:\n  train.lr: {low: 0, high: 0.1, log: true}\n", "space.train.lr: a log scale needs low > 0, got 0"),
    ("sampler: grid\n" + SPACE, "space.train.lr: the grid sampler needs a list of choices for every key"),
    ("objective: val_accuracy\n" + SPACE, "objective: must be one of val_acc, val_loss, got 'val_accuracy'"),
    ("space:\n  model.layers[2].dropout: {choices: [0.2, 1.5]}\n",
     "model.layers[2].dropout (set by --set): must be in [0, 1), got 1.5"),
    ("space:\n  train.batch_size: {low: 0, high: 64, int: true}\n", "train.batch_size (set by --set): must be >= 1"),
])
def test_a_bad_sweep_file_is_one_line_before_any_trial(tmp_path, monkeypatch, text, expect):
    monkeypatch.chdir(tmp_path)
    p = _sweep(tmp_path, text)
    r = runner.invoke(app, ["sweep", str(p)])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and expect in r.output, r.output
    assert not (tmp_path / "sweeps").exists()


def test_the_objective_needs_a_validation_split(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = _sweep(tmp_path, SPACE)
    (tmp_path / "base.yaml").write_text((tmp_path / "base.yaml").read_text().replace("validation: 200",
                                                                                     "validation: 0"))
    r = runner.invoke(app, ["sweep", str(p)])
    assert r.exit_code == 2 and "is measured on a validation split, and base.yaml holds none out; set data.validation" in r.output


def test_a_sweep_runs_trials_as_run_folders_and_reruns_continue_to_the_budget(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = _sweep(tmp_path, "trials: 3\nsampler: random\npruner: none\n" + SPACE)
    r = runner.invoke(app, ["sweep", str(p), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert [t["state"] for t in summary["trials"]] == ["complete"] * 3
    runs = sorted((tmp_path / "sweeps" / "s").glob("trial-*"))
    assert [d.name for d in runs] == ["trial-0000", "trial-0001", "trial-0002"]
    values = sorted((t["value"] for t in summary["trials"]), reverse=True)
    assert [t["value"] for t in summary["trials"]] == values  # best first
    r = runner.invoke(app, ["runs", str(tmp_path / "sweeps" / "s"), "--json"])
    assert r.exit_code == 0 and len(json.loads(r.stdout)) == 3  # every trial is a run mlpkit lists
    best = summary["trials"][0]
    metrics = [json.loads(x) for x in (Path(best["run"]) / "metrics.jsonl").read_text().splitlines()]
    assert best["value"] == metrics[-1]["val_acc"]  # the validation score, never the test split
    p.write_text(p.read_text().replace("trials: 3", "trials: 4"))
    r = runner.invoke(app, ["sweep", str(p), "--json"])
    assert r.exit_code == 0 and len(json.loads(r.stdout)["trials"]) == 4  # continued: one more, not four


def test_the_best_trial_exports_a_config_that_trains_it_bit_identically(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = _sweep(tmp_path, "trials: 2\nsampler: random\npruner: none\n" + SPACE)
    assert runner.invoke(app, ["sweep", str(p)]).exit_code == 0
    r = runner.invoke(app, ["sweep", "show", "s", "--export-best", str(tmp_path / "best.yaml"), "--json"])
    assert r.exit_code == 0, r.output
    best = json.loads(r.stdout)["trials"][0]
    assert runner.invoke(app, ["train", str(tmp_path / "best.yaml"), "--out", str(tmp_path / "again"),
                               "-q"]).exit_code == 0
    assert (tmp_path / "again" / "model.npz").read_bytes() == (Path(best["run"]) / "model.npz").read_bytes()
    r = runner.invoke(app, ["sweep", "show", "nosuch"])
    assert r.exit_code == 2 and "no such sweep; run mlpkit sweep SWEEP.yaml first" in r.output


def test_two_workers_share_one_study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = _sweep(tmp_path, "trials: 4\nsampler: random\npruner: none\n" + SPACE)
    r = runner.invoke(app, ["sweep", str(p), "--workers", "2", "--json"])
    assert r.exit_code == 0, r.output
    trials = json.loads(r.stdout)["trials"]
    assert sum(t["state"] == "complete" for t in trials) >= 4
    assert len({t["run"] for t in trials}) == len(trials)  # no two trials share a folder


@pytest.mark.slow
def test_a_worker_killed_mid_trial_loses_only_that_trial(tmp_path):
    """kill -9 during a trial; the same command again: the killed trial is failed by its stale heartbeat (and
    retried), and the study ends with the requested number of completed trials."""
    import optuna

    p = _sweep(tmp_path, "trials: 3\nsampler: random\npruner: none\n" + SPACE)
    (tmp_path / "base.yaml").write_text((tmp_path / "base.yaml").read_text().replace("epochs: 2", "epochs: 400"))
    env = {**os.environ, "MLPKIT_SWEEP_GRACE": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", "from mlpkit.app.cli import run; run()", "sweep", str(p)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoint = tmp_path / "sweeps" / "s" / "trial-0000" / "checkpoints" / "last.npz"
    while not checkpoint.exists():  # the event: the first trial is training
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        os.sched_yield()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(1.5)  # staleness is defined by time: no heartbeat for longer than the grace period (1 s here)
    (tmp_path / "base.yaml").write_text((tmp_path / "base.yaml").read_text().replace("epochs: 400", "epochs: 2"))
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'sweeps' / 's' / 'study.db'}")
    states = [t.state.name for t in study.get_trials()]
    assert states.count("COMPLETE") == 3 and states[0] == "FAIL", states


def test_set_gives_every_trial_the_same_values(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = _sweep(tmp_path, "set: {train.epochs: 1, data.validation: 100}\ntrials: 2\nsampler: random\npruner: none\n"
               + SPACE)
    r = runner.invoke(app, ["sweep", str(p), "--json"])
    assert r.exit_code == 0, r.output
    for t in json.loads(r.stdout)["trials"]:
        lines = (Path(t["run"]) / "metrics.jsonl").read_text().splitlines()
        assert len(lines) == 1  # one epoch, as set
    p.write_text(p.read_text().replace("train.epochs: 1", "train.epochs: 0"))
    r = runner.invoke(app, ["sweep", str(p)])
    assert r.exit_code == 2 and "train.epochs (set by --set): must be >= 1, got 0" in r.output


@pytest.mark.slow
def test_ctrl_c_stops_a_sweep_cleanly_and_the_same_command_continues(tmp_path):
    p = _sweep(tmp_path, "trials: 2\nsampler: random\npruner: none\n" + SPACE)
    (tmp_path / "base.yaml").write_text((tmp_path / "base.yaml").read_text().replace("epochs: 2", "epochs: 400"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", "from mlpkit.app.cli import run; run()", "sweep", str(p)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint = tmp_path / "sweeps" / "s" / "trial-0000" / "checkpoints" / "last.npz"
    while not checkpoint.exists():  # the event: the first trial is training
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        os.sched_yield()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate()
    assert proc.returncode == 130 and "run the same command again to continue" in err and "Traceback" not in err
    (tmp_path / "base.yaml").write_text((tmp_path / "base.yaml").read_text().replace("epochs: 400", "epochs: 2"))
    r = subprocess.run([*cmd, "--json"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sum(t["state"] == "complete" for t in json.loads(r.stdout)["trials"]) == 2


def test_show_reads_at_60_columns_and_plots_three_figures(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = _sweep(tmp_path, "trials: 3\nsampler: random\npruner: none\n" + SPACE)
    assert runner.invoke(app, ["sweep", str(p)]).exit_code == 0
    monkeypatch.setenv("COLUMNS", "60")
    r = runner.invoke(app, ["sweep", "show", "s", "--plot", str(tmp_path / "s.png")])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 60 and lines[1].startswith("trial  state")
    assert "         train.lr = " in r.stdout and "parameter importances (fANOVA)" in r.stdout
    for name in ("s.png", "s-parallel.png", "s-slice.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG", name
