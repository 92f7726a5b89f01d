"""Runs that remember and read well: self-sufficient run folders (hints that work when pasted),
mlpkit runs / compare / plot, early stopping, 60-column output, strict JSON, the README key table."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mlpkit.app import api, catalog
from mlpkit.app.cli import app
from mlpkit.app.locking import RunLock
from mlpkit.config import schema, validate
from mlpkit.errors import Interrupted

from ..conftest import CONFIGS, ROOT
from ..idx_files import register, write_idx_dataset

runner = CliRunner()
Q = str(CONFIGS / "quickstart.yaml")


def _strict(text: str):
    """JSON as RFC 8259 has it: NaN and Infinity are not numbers there."""
    def refuse(const):
        raise ValueError(f"non-standard JSON constant {const}")

    return json.loads(text, parse_constant=refuse)


def _hints(output: str) -> list[str]:
    """The mlpkit commands the output suggests running."""
    found = re.findall(r"(mlpkit (?:evaluate|train --resume) .+?)\.?$", output, re.M)
    return [h.strip() for h in found]


# --------------------------------------------------------------------------- self-sufficient runs


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A registered IDX dataset in a folder of its own, and a config that uses it."""
    data = tmp_path / "data"
    write_idx_dataset(data)
    register(monkeypatch, data)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("data: {dataset: tiny, validation: 10, normalize: true}\n"
                   "model: {layers: [{linear: 16}, sigmoid, {linear: 10}]}\ntrain: {epochs: 2, batch_size: 10}\n")
    return data, cfg


def test_every_printed_hint_works_when_pasted(tiny, tmp_path, monkeypatch):
    data, cfg = tiny
    run = tmp_path / "my runs" / "r1"  # a space: the hint must quote it
    r = runner.invoke(app, ["train", str(cfg), "--data-dir", str(data), "--out", str(run), "-q"])
    assert r.exit_code == 0, r.output
    hints = _hints(r.output)
    assert hints == [f"mlpkit evaluate {shlex.quote(str(run))}"]
    # An interrupted run prints how to resume it.
    trainer, writer = api.start_run(cfg, (), tmp_path / "stopped", api.DataSource(str(data)))
    with pytest.raises(Interrupted) as e:
        api.train_run(trainer, writer, stop_requested=lambda: 2)
    hints += _hints(str(e.value))
    assert hints[-1] == f"mlpkit train --resume {shlex.quote(str(tmp_path / 'stopped'))}"
    monkeypatch.chdir(tmp_path)  # elsewhere, with no --data-dir and no $MLPKIT_DATA_DIR
    for hint in hints:
        r = runner.invoke(app, [*shlex.split(hint)[1:], "-q"] if "train" in hint else shlex.split(hint)[1:])
        assert r.exit_code == 0, (hint, r.output)
    r = runner.invoke(app, ["inspect-grads", str(run), "-q", "--json"])
    assert r.exit_code == 0 and _strict(r.stdout)["trained"] is True


def test_a_run_records_its_data_and_a_moved_folder_is_named(tiny, tmp_path):
    data, cfg = tiny
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", str(cfg), "--data-dir", str(data), "--out", str(run), "-q"]).exit_code == 0
    info = json.loads((run / "run.json").read_text())
    assert info["data"]["dataset"] == "tiny" and info["data"]["location"] == str(data.resolve())
    assert info["status"] == "finished" and info["config"] == str(cfg) and info["started"]
    trainer = api.prepare(cfg, (), api.DataSource(str(data)))
    assert info["data"]["scale"] == trainer.data.scale and info["data"]["shift"] == trainer.data.shift
    moved = tmp_path / "moved"
    data.rename(moved)
    r = runner.invoke(app, ["evaluate", str(run)])
    assert r.exit_code == 2 and f"{data.resolve()}: the folder this run's tiny data was read from no longer exists" \
        in " ".join(r.output.split())
    r = runner.invoke(app, ["evaluate", str(run), "--data-dir", str(moved)])  # an explicit --data-dir still wins
    assert r.exit_code == 0, r.output


def test_an_npz_run_is_scored_from_another_folder(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "mine.npz", x_train=rng.integers(0, 255, (40, 6), dtype=np.uint8), y_train=np.arange(40) % 3,
             x_test=rng.integers(0, 255, (9, 6), dtype=np.uint8), y_test=np.arange(9) % 3)
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["train", Q, "--set", "data.dataset=mine.npz", "--set", "data.validation=0",
                            "--set", "model.layers[3].linear=3", "--epochs", "1", "--out", "r", "-q"])
    assert r.exit_code == 0, r.output
    monkeypatch.chdir(ROOT)
    assert runner.invoke(app, ["evaluate", str(tmp_path / "r")]).exit_code == 0


# --------------------------------------------------------------------------- runs, compare, plot


@pytest.fixture
def some_runs(tmp_path):
    root = tmp_path / "runs"
    assert runner.invoke(app, ["train", Q, "--epochs", "2", "--out", str(root / "a"), "-q"]).exit_code == 0
    assert runner.invoke(app, ["train", Q, "--epochs", "3", "--lr", "0.05", "--seed", "4", "--out",
                               str(root / "b"), "-q"]).exit_code == 0
    assert runner.invoke(app, ["train", Q, "--lr", "1e6", "--out", str(root / "group" / "boom"), "-q"]).exit_code == 1
    trainer, writer = api.start_run(Q, (), root / "stopped")
    with pytest.raises(Interrupted):
        api.train_run(trainer, writer, stop_requested=lambda: 2)
    return root


def test_runs_lists_every_run_with_its_status(some_runs):
    lock = RunLock(some_runs / "a")  # as if a process were training it now
    try:
        r = runner.invoke(app, ["runs", str(some_runs), "--json"])
    finally:
        lock.close()
    assert r.exit_code == 0
    rows = {row["name"]: row for row in _strict(r.stdout)}
    assert set(rows) == {"a", "b", "group/boom", "stopped"}
    assert [row["status"] for row in (rows["a"], rows["b"], rows["group/boom"], rows["stopped"])] == [
        "running", "finished", "diverged", "interrupted"]
    assert (rows["b"]["epochs_done"], rows["b"]["epochs_planned"]) == (3, 3)
    assert rows["b"]["test_acc"] > 0.5 and rows["b"]["best_val_acc"] > 0.5 and rows["b"]["config"] == Q
    order = [row["name"] for row in _strict(r.stdout)]
    assert order.index("stopped") < order.index("a")  # newest first
    r = runner.invoke(app, ["runs", str(some_runs)])
    assert r.exit_code == 0 and "diverged" in r.output and "interrupted" in r.output
    r = runner.invoke(app, ["runs", str(some_runs / "nothing")])
    assert r.exit_code == 2 and "no such folder" in r.output


def test_compare_shows_metrics_and_the_config_keys_that_differ(some_runs):
    r = runner.invoke(app, ["compare", str(some_runs / "a"), str(some_runs / "b"), "--json"])
    assert r.exit_code == 0
    c = _strict(r.stdout)
    assert dict(c["differences"]) == {"seed": [0, 4], "train.epochs": [2, 3], "train.lr": [0.1, 0.05]}
    metrics = dict(c["metrics"])
    assert metrics["epochs"] == [2, 3] and metrics["status"] == ["finished", "finished"]
    r = runner.invoke(app, ["compare", str(some_runs / "a"), str(some_runs / "b")])
    assert r.exit_code == 0 and "config keys that differ" in r.output and "train.lr" in r.output
    r = runner.invoke(app, ["compare", str(some_runs / "a"), str(some_runs)])
    assert r.exit_code == 2 and "is not an mlpkit run folder" in r.output


@pytest.mark.slow
def test_plot_draws_the_curves_of_several_runs(some_runs, tmp_path):
    out = tmp_path / "curves.png"
    r = runner.invoke(app, ["plot", str(some_runs / "a"), str(some_runs / "b"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    r = runner.invoke(app, ["plot", str(some_runs / "stopped"), "-o", str(out)])
    assert r.exit_code == 2 and "has no finished epoch to plot" in r.output
    r = runner.invoke(app, ["plot", str(some_runs / "a"), "-o", str(tmp_path / "c.gif")])
    assert r.exit_code == 2 and "must end in .png, .svg or .pdf" in r.output


def test_plot_without_matplotlib_names_the_extra(some_runs, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    r = runner.invoke(app, ["plot", str(some_runs / "a")])
    assert r.exit_code == 2 and "pip install 'mlpkit[plot]'" in r.output and "Traceback" not in r.output


def test_plot_colors_are_readable_on_white():
    from mlpkit.app.plots import RUN_COLORS

    for c in RUN_COLORS:  # relative luminance well below white's
        r, g, b = (int(c[i:i + 2], 16) / 255 for i in (1, 3, 5))
        assert 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.6, c


# --------------------------------------------------------------------------- early stopping


ES = ["--set", "data.validation=300", "--set", "train.early_stopping.patience=2", "--epochs", "40", "--lr", "0.5"]


def test_early_stopping_keeps_the_best_epochs_weights(tmp_path):
    run = tmp_path / "es"
    r = runner.invoke(app, ["train", Q, *ES, "--out", str(run), "-q"])
    assert r.exit_code == 0, r.output
    res = json.loads((run / "results.json").read_text())["early_stopping"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    accs = [row["val_acc"] for row in rows]
    assert res["stopped_early"] is True and len(rows) < 40
    assert res["best_epoch"] == 1 + int(np.argmax(accs)) and res["best_val_acc"] == max(accs)
    assert len(rows) == res["best_epoch"] + 2  # patience 2
    assert f"the best validation accuracy, {100 * max(accs):.2f}%, was at epoch {res['best_epoch']}" in \
        " ".join(r.output.split())
    final = catalog.read_results(run)
    scored = json.loads(runner.invoke(app, ["evaluate", str(run), "--split", "validation", "--json"]).stdout)
    assert scored["accuracy"] == res["best_val_acc"] and final["test"]["accuracy"] > 0.8
    best = api.load_weights(run / "checkpoints" / "best.npz").model.named_params()
    for k, v in api.load_weights(run).model.named_params().items():
        np.testing.assert_array_equal(v, best[k])


def test_early_stopping_resumes_exactly(tmp_path):
    whole = tmp_path / "whole"
    assert runner.invoke(app, ["train", Q, *ES, "--out", str(whole), "-q"]).exit_code == 0
    part = tmp_path / "part"
    trainer, writer = api.start_run(Q, ("data.validation=300", "train.early_stopping.patience=2", "train.epochs=40",
                                        "train.lr=0.5"), part)
    calls = []

    def stop():
        calls.append(1)
        return 2 if len(calls) == 3 * trainer.steps_per_epoch + 5 else 0  # mid-epoch 4

    with pytest.raises(Interrupted):
        api.train_run(trainer, writer, stop_requested=stop)
    r = runner.invoke(app, ["train", "--resume", str(part), "-q"])
    assert r.exit_code == 0, r.output
    assert (part / "model.npz").read_bytes() == (whole / "model.npz").read_bytes()
    assert (part / "metrics.jsonl").read_bytes() == (whole / "metrics.jsonl").read_bytes()


def test_early_stopping_needs_a_validation_split():
    r = runner.invoke(app, ["train", Q, "--set", "data.validation=0", "--set", "train.early_stopping.patience=2",
                            "--dry-run"])
    assert r.exit_code == 2 and "train.early_stopping" in r.output and "set data.validation" in r.output


# --------------------------------------------------------------------------- terminals and JSON


@pytest.fixture(scope="module")
def done_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("n") / "run"
    assert runner.invoke(app, ["train", Q, "--epochs", "2", "--out", str(run), "-q"]).exit_code == 0
    return run


def _commands(run: Path) -> list[list[str]]:
    return [["train", Q, "--epochs", "2", "--out", str(run.parent / "narrow"), "--force", "-q"],
            ["train", Q, "--dry-run"], ["train", "--resume", str(run), "--epochs", "3", "--dry-run"], ["evaluate", str(run)],
            ["gradcheck"], ["gradcheck", Q], ["inspect-grads", Q, "--epochs", "1", "-q"],
            ["inspect-grads", str(run), "-q"], ["inspect-dropout", str(run), "-q"], ["data", "list"],
            ["data", "info", "digits"], ["runs", str(run.parent)], ["compare", str(run), str(run)]]


@pytest.mark.slow
def test_every_table_reads_whole_at_60_columns(done_run, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    for args in _commands(done_run):
        r = runner.invoke(app, args)
        assert r.exit_code == 0, (args, r.output)
        lines = r.stdout.splitlines()
        assert lines, args
        too_long = [line for line in lines if len(line.rstrip()) > 60]
        assert not too_long, (args, too_long[:3])
        assert "…" not in r.stdout, args
        assert not re.search(r"\d\.\d*\s*$\n^\s*e[-+]\d", r.stdout, re.M), args  # no number split over lines


@pytest.mark.slow
def test_every_json_output_is_strict_json(done_run):
    for args in _commands(done_run):
        r = runner.invoke(app, [*args, "--json"])
        assert r.exit_code == 0, (args, r.output)
        _strict(r.stdout)


def test_non_finite_numbers_become_null():
    from mlpkit.app.render import strict

    @dataclasses.dataclass
    class R:
        a: float
        b: list

    assert strict(R(float("inf"), [1.0, float("nan"), {"x": -float("inf")}])) == {"a": None, "b": [1.0, None,
                                                                                                   {"x": None}]}


def test_train_shortcuts_match_set():
    r1 = runner.invoke(app, ["train", Q, "--epochs", "3", "--lr", "0.05", "--seed", "7", "--dry-run", "--json"])
    r2 = runner.invoke(app, ["train", Q, "--set", "train.epochs=3", "--set", "train.lr=0.05", "--set", "seed=7",
                             "--dry-run", "--json"])
    assert r1.exit_code == r2.exit_code == 0 and r1.stdout == r2.stdout and _strict(r1.stdout)["epochs"] == 3


def test_labels_say_what_they_show(done_run):
    r = runner.invoke(app, ["inspect-grads", str(done_run), "-q"])
    assert "trained weights (epoch 2)" in r.output and "epoch 0 is the initialization" not in r.output
    r = runner.invoke(app, ["inspect-grads", str(CONFIGS / "vanishing-relu.yaml"), "--set", "data.dataset=digits",
                            "--set", "data.validation=100", "--epochs", "0", "-q"])
    assert r.exit_code == 0 and "inactive" in r.output and "reading: " in r.output
    r = runner.invoke(app, ["train", Q, "--set", "model.layers[2].dropout=0", "--epochs", "1", "--out",
                            str(done_run.parent / "nodrop"), "-q"])
    assert "dropout on" not in r.output and "as trained" in r.output


def test_sigmoid_reading_states_the_ratio():
    r = runner.invoke(app, ["inspect-grads", str(CONFIGS / "vanishing-sigmoid.yaml"), "--set", "data.dataset=digits",
                            "--set", "data.validation=100", "--epochs", "0", "-q", "--json"])
    data = _strict(r.stdout)
    assert "σ′ ≤ 1/4" in data["reading"] and re.search(r"\d+(\.\d+)?× smaller", data["reading"])


# --------------------------------------------------------------------------- README


def _schema_keys(cls, prefix="") -> set[str]:
    keys = set()
    for f in dataclasses.fields(cls):
        hint = validate._field_types(cls)[f.name][0]
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hint):
            keys |= _schema_keys(hint, name + ".")
        else:
            keys.add(name)
    return keys


def test_the_config_key_table_has_every_config_key():
    text = (ROOT / "docs" / "config.md").read_text()  # the README links to it
    table = "\n".join(line for line in text.splitlines() if line.startswith("| `"))
    first_cells = " ".join(line.split("|")[1] for line in table.splitlines())
    documented = set(re.findall(r"`([a-z0-9_.]+)`", first_cells))
    missing = _schema_keys(schema.Config) - documented
    assert not missing, f"docs/config.md's key table lacks {sorted(missing)}"
    assert "(docs/config.md)" in (ROOT / "README.md").read_text()


def test_force_never_deletes_through_a_linked_checkpoints_folder(tmp_path):
    """Issue 23, item 1: --force unlinked another run's last.npz and best.npz through X/checkpoints -> other run,
    and only then refused the folder."""
    q = str(CONFIGS / "quickstart.yaml")
    other = tmp_path / "other"
    assert runner.invoke(app, ["train", q, "--epochs", "1", "--out", str(other), "-q"]).exit_code == 0
    kept = {p.name: p.read_bytes() for p in (other / "checkpoints").iterdir()}
    assert set(kept) == {"last.npz", "best.npz"}
    x = tmp_path / "x"
    assert runner.invoke(app, ["train", q, "--epochs", "1", "--out", str(x), "-q"]).exit_code == 0
    for p in (x / "checkpoints").iterdir():
        p.unlink()
    (x / "checkpoints").rmdir()
    (x / "checkpoints").symlink_to(other / "checkpoints")
    r = runner.invoke(app, ["train", q, "--epochs", "1", "--out", str(x), "--force", "-q"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert r.output.strip() == (f"error: {x / 'checkpoints'}: is a symbolic link; a run folder's checkpoints are "
                                "written only inside it.")
    assert {p.name: p.read_bytes() for p in (other / "checkpoints").iterdir()} == kept
    assert (x / "model.npz").is_file()  # nothing of x removed either: the check came first


@pytest.mark.parametrize("plant", ["folder", "fifo"])
def test_force_checks_every_old_run_file_before_removing_any(tmp_path, plant):
    """The class of item 1: --force removes only files and links. A folder or a FIFO under a run file's name
    (run.json here, the last name removed) is refused by name before anything is removed."""
    q = str(CONFIGS / "quickstart.yaml")
    x = tmp_path / "x"
    assert runner.invoke(app, ["train", q, "--epochs", "1", "--out", str(x), "-q"]).exit_code == 0
    (x / "run.json").unlink()
    (x / "run.json").mkdir() if plant == "folder" else os.mkfifo(x / "run.json")
    before = sorted(p.name for p in x.rglob("*"))
    r = runner.invoke(app, ["train", q, "--epochs", "1", "--out", str(x), "--force", "-q"])
    assert r.exit_code == 2 and r.output.strip() == (f"error: {x / 'run.json'}: is not a file mlpkit wrote; remove "
                                                     "it yourself or choose another --out.")
    assert sorted(p.name for p in x.rglob("*")) == before


BOMB = ('a: &a ["x","x","x","x","x","x","x","x","x"]\n'
        + "".join(f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n" for p, c in zip("abcdefgh", "bcdefghi")))


def test_an_alias_bomb_is_refused_by_every_reader_of_configs(tmp_path, write_config):
    """Issue 23, item 14: a "billion laughs" config.yaml (400 bytes, 10⁹ values expanded) hung compare for
    90 s and 1.9 GB; train refused it only because validation failed early. Now the parser refuses it."""
    r = runner.invoke(app, ["train", str(write_config(BOMB))])
    assert r.exit_code == 2 and "its aliases expand to more than 100,000 values" in r.output
    for name in ("a", "b"):
        assert runner.invoke(app, ["train", Q, "--epochs", "1", "--out", str(tmp_path / name), "-q"]).exit_code == 0
    (tmp_path / "b" / "config.yaml").write_text(BOMB)
    for args in (["compare", str(tmp_path / "a"), str(tmp_path / "b")], ["runs", str(tmp_path)]):
        r = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert r.exit_code in (0, 2) and "Traceback" not in r.output, r.output
    ok = runner.invoke(app, ["train", str(write_config("model: {layers: &l [{linear: 10}]}\nx: *l\n"))])
    assert "unknown key" in ok.output  # an ordinary alias is still read: the document reaches validation


@pytest.mark.parametrize("rows,expect_code,expect", [
    ([{"epoch": 1, "train_loss": "x", "val_acc": [1], "grad_norms": "oops"},
      {"epoch": 2, "train_loss": 0.5, "grad_norms": {"layers.0.W": "y", "../../x": 1.0, "layers.3.W": 0.2}}],
     0, "5 damaged value(s) read as unknown"),
    (["[1, 2]", "not json", {"epoch": "one"}], 2, "has no finished epoch to plot (metrics.jsonl holds no readable "
                                                   "epoch row)"),
])
def test_plot_reads_damaged_metrics_as_unknown(tmp_path, rows, expect_code, expect):
    """Issue 23, items 15 and 21: wrong types in metrics.jsonl gave plot an AttributeError traceback, and a file of
    unreadable rows was called empty. runs, compare and plot now share one policy (catalog.clean_row)."""
    pytest.importorskip("matplotlib")
    run = tmp_path / "r"
    assert runner.invoke(app, ["train", Q, "--epochs", "2", "--out", str(run), "-q"]).exit_code == 0
    (run / "metrics.jsonl").write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    r = runner.invoke(app, ["plot", str(run), "-o", str(tmp_path / "c.png")])
    assert r.exit_code == expect_code and "Traceback" not in r.output and expect in r.output, r.output
    for args in (["runs", str(tmp_path)], ["compare", str(run), str(run)]):
        assert runner.invoke(app, args).exit_code == 0


def _stopped_before_first_checkpoint(folder: Path) -> None:
    """What a kill -9 between the run folder's creation and its first checkpoint leaves behind."""
    from mlpkit.app.configfile import load_config
    from mlpkit.app.rundir import RunWriter

    w = RunWriter(folder, load_config(Q))
    w.close()
    (folder / ".run.json.x1y2z3.tmp").write_text("{")  # a write the kill cut short


def test_a_run_killed_before_its_first_checkpoint_gives_consistent_advice(tmp_path):
    """Issue 23, item 17: --resume said "train it again", and training again said "replace it with --force"; the
    killed writer's temporary file stayed for ever."""
    run = tmp_path / "run"
    _stopped_before_first_checkpoint(run)
    r = runner.invoke(app, ["train", "--resume", str(run)])
    assert r.exit_code == 2 and f"train it again into the same folder (--out {run}: no --force needed" in r.output
    r = runner.invoke(app, ["train", Q, "--epochs", "1", "--out", str(run), "-q"])
    assert r.exit_code == 0, r.output
    assert not list(run.glob(".*.tmp")) and (run / "model.npz").is_file()
    r = runner.invoke(app, ["train", Q, "--epochs", "1", "--out", str(run), "-q"])  # now it holds weights
    assert r.exit_code == 2 and "already holds a run" in r.output and "--force" in r.output


def test_a_folder_being_trained_is_not_offered_force(tmp_path):
    """Issue 23, item 21: a new run into a running run's folder advised --force, which the lock then refused."""
    from mlpkit.app.locking import RunLock

    run = tmp_path / "run"
    assert runner.invoke(app, ["train", Q, "--epochs", "1", "--out", str(run), "-q"]).exit_code == 0
    lock = RunLock(run)  # as a live trainer holds it
    try:
        for extra in ([], ["--force"]):
            r = runner.invoke(app, ["train", Q, "--epochs", "1", "--out", str(run), "-q", *extra])
            assert r.exit_code == 2 and "another mlpkit process" in r.output, r.output
            assert "--force" not in r.output.split("another mlpkit process")[1]
    finally:
        lock.close()


def test_a_folder_holding_only_a_users_config_yaml_is_never_emptied(tmp_path):
    """The no-weights rule is for mlpkit's own runs: a folder with a config.yaml of the user's is still refused."""
    (tmp_path / "config.yaml").write_text("mine: true\n")
    r = runner.invoke(app, ["train", Q, "--epochs", "1", "--out", str(tmp_path), "-q"])
    assert r.exit_code == 2 and "already holds a run" in r.output
    assert (tmp_path / "config.yaml").read_text() == "mine: true\n"


def test_a_fifo_named_lock_never_blocks_runs_or_compare(tmp_path):
    """Issue 23, item 4: a FIFO named .lock in a run folder blocked `runs` and `compare` for ever."""
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", Q, "--epochs", "1", "--out", str(run), "-q"]).exit_code == 0
    (run / ".lock").unlink()
    os.mkfifo(run / ".lock")
    for args in (["runs", str(tmp_path)], ["compare", str(run), str(run)]):
        r = runner.invoke(app, args)
        assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    r = runner.invoke(app, ["train", "--resume", str(run), "--set", "train.epochs=2", "-q"])
    assert r.exit_code == 2 and f"{run / '.lock'}: is not a regular file" in r.output


def test_metrics_csv_has_keras_csvloggers_columns(tmp_path):
    """Issue 26: metrics.csv beside metrics.jsonl, as Keras's CSVLogger writes it (epoch from 0, then the
    metric names sorted), so tools that read Keras logs read mlpkit's."""
    import csv

    run = tmp_path / "r"
    assert runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "3", "--out", str(run),
                               "-q"]).exit_code == 0
    with (run / "metrics.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["epoch", "accuracy", "learning_rate", "loss", "val_accuracy", "val_loss"]
    jsonl = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [int(r["epoch"]) for r in rows] == [m["epoch"] - 1 for m in jsonl] == [0, 1, 2]
    for r, m in zip(rows, jsonl):
        assert float(r["loss"]) == m["train_loss"] and float(r["accuracy"]) == m["train_eval_acc"]
        assert float(r["val_loss"]) == m["val_loss"] and float(r["val_accuracy"]) == m["val_acc"]
        assert float(r["learning_rate"]) == m["lr"]
    r = runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "1", "--set", "data.validation=0",
                            "--out", str(tmp_path / "noval"), "-q"])
    assert r.exit_code == 0
    assert (tmp_path / "noval" / "metrics.csv").read_text().splitlines()[1].endswith(",,")  # nothing measured


def test_plot_speaks_one_visual_language(tmp_path, monkeypatch):
    """Issue 26: colour = run (layer in the ‖dW‖ panel), line style = split in every panel, distinct legend
    entries even for two identical runs, a title naming the runs, the test score marked."""
    from mlpkit.app import plots

    run = tmp_path / "same"
    assert runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "3", "--out", str(run),
                               "-q"]).exit_code == 0
    captured = {}
    real = plots.save_figure

    def keep(fig, path, what="--plot", inputs=()):
        captured["fig"] = fig
        real(fig, path, what, inputs)

    monkeypatch.setattr(plots, "save_figure", keep)
    r = runner.invoke(app, ["plot", str(run), str(run), "-o", str(tmp_path / "c.png")])
    assert r.exit_code == 0, r.output
    fig = captured["fig"]
    loss, acc, grad = fig.axes[:3]
    assert fig._suptitle.get_text().startswith("runs: same, same (2)")
    for ax in (loss, acc, grad):
        labels = ax.get_legend_handles_labels()[1]
        assert len(labels) == len(set(labels)), labels  # distinct, though the runs are identical
    style = {line.get_label().split(": ", 1)[1]: line.get_linestyle() for line in loss.lines + acc.lines
             if ": " in line.get_label() and "test" not in line.get_label()}
    assert style["train, inference mode"] == "--" and style["validation"] == ":" and style["train, as trained"] == "-"
    colours = {line.get_label().split(": ")[0]: line.get_color() for line in loss.lines}
    assert colours["same"] != colours["same (2)"]
    for line in acc.lines:  # a run's accuracy curves wear its loss colour
        assert line.get_color() == colours[line.get_label().split(": ")[0]]
    markers = {line.get_label().split(": ")[0]: line.get_marker() for line in loss.lines}
    assert markers["same"] != markers["same (2)"]
    stars = [line for line in acc.lines if line.get_marker() == "*"]
    test = json.loads((run / "results.json").read_text())["test"]["accuracy"]
    assert len(stars) == 2 and all(abs(s.get_ydata()[0] - 100 * test) < 1e-9 for s in stars)
    assert acc.get_ylabel() == "accuracy (%)"
    layer_colours = {line.get_label().split(": ")[1]: line.get_color() for line in grad.lines}
    assert layer_colours["layers.0"] != layer_colours["layers.3"]


def test_evaluate_plot_draws_the_confusion_matrix_and_the_mistakes(tmp_path):
    run = tmp_path / "r"
    assert runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--epochs", "2", "--out", str(run),
                               "-q"]).exit_code == 0
    out = tmp_path / "eval.png"
    r = runner.invoke(app, ["evaluate", str(run), "--plot", str(out)])
    assert r.exit_code == 0 and f"figure written to {out}" in r.output and out.read_bytes()[:4] == b"\x89PNG"
    r = runner.invoke(app, ["evaluate", str(run), "--plot", str(tmp_path / "eval.txt")])
    assert r.exit_code == 2 and "the file must end in .png, .svg or .pdf" in r.output
