"""Issue 25's stumbles of a new user's first hour, each fixed and held: resume messages, starting from an old
run's weights, errors that say "did you mean", a config given where a run belongs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mlpkit.app import api
from mlpkit.app.cli import app
from mlpkit.app.runfiles import load_weights

from ..conftest import CONFIGS

runner = CliRunner()
Q = str(CONFIGS / "quickstart.yaml")


@pytest.fixture
def done_run(tmp_path):
    run = tmp_path / "done"
    r = runner.invoke(app, ["train", Q, "--epochs", "2", "--out", str(run), "-q"])
    assert r.exit_code == 0, r.output
    return run


def _files(run):
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in run.rglob("*") if p.is_file()}


def test_resume_with_lr_names_the_option_typed_and_the_way_to_do_it(done_run):
    before = _files(done_run)
    r = runner.invoke(app, ["train", "--resume", str(done_run), "--lr", "0.01"])
    assert r.exit_code == 2 and r.output.strip() == (
        f"error: --lr: a resumed run keeps its config, so only --epochs may change; to train on with another lr, "
        f"start a new run from its weights: mlpkit train CONFIG --init-from {done_run} --lr 0.01.")
    assert "resuming" not in r.output and _files(done_run) == before


def test_resuming_a_finished_run_says_so_and_how_to_extend_it(done_run):
    for extra in ([], ["--dry-run"]):
        r = runner.invoke(app, ["train", "--resume", str(done_run), *extra])
        assert r.exit_code == 2 and r.output.strip() == (
            f"error: {done_run}: has finished all 2 of its epochs, so there is nothing to resume; train it longer "
            f"with --resume {done_run} --epochs N (N > 2), or start a new run from its weights with mlpkit train "
            f"CONFIG --init-from {done_run}.")
    r = runner.invoke(app, ["train", "--resume", str(done_run), "--epochs", "3", "-q", "--json"])
    assert r.exit_code == 0 and len(json.loads(r.stdout)["history"]) == 3


@pytest.mark.parametrize("which", ["", "best", "last"])
def test_init_from_starts_a_new_run_from_saved_weights(done_run, tmp_path, which):
    src = done_run / which if which else done_run
    trainer, writer = api.start_run(Q, ("train.lr=0.01",), tmp_path / "new", init_from=src)
    try:
        saved = load_weights(src)
        for name, w in saved.model.named_params().items():
            assert np.array_equal(trainer.model.named_params()[name], w), name
        assert trainer.epoch == 0 and trainer.optimizer.lr == 0.01 and trainer.optimizer.velocity == {}
        expected = done_run / ("checkpoints/" + which + ".npz" if which else "model.npz")
        assert json.loads((tmp_path / "new" / "run.json").read_text())["init_from"] == str(expected.resolve())
    finally:
        writer.close()


def test_init_from_a_model_of_another_shape_is_refused_by_name(done_run, tmp_path):
    r = runner.invoke(app, ["train", Q, "--set", "model.layers[0].linear=64", "--init-from", str(done_run),
                            "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and r.output.strip() == (
        f"error: --init-from {done_run}: its model (64-128-10 sigmoid, dropout 0.2) does not fit this config's "
        "(64-64-10 sigmoid, dropout 0.2): layers.0.W is (64, 128) there and (64, 64) here.")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("command", [["evaluate"], ["predict"], ["export", "--format", "onnx"]])
def test_a_config_where_a_run_belongs_is_named_as_a_config(command, tmp_path):
    args = [*command, Q] + ([str(tmp_path / "x.png")] if command == ["predict"] else [])
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and r.output.strip() == (
        f"error: {Q}: is a config, not a run; this command takes a run folder or a weights .npz (train the config "
        f"first: mlpkit train {Q}).")


@pytest.mark.parametrize("args,hint", [
    (["--set", "train.lrr=0.1"], "train.lrr (set by --set): unknown key (did you mean 'lr'?); expected one of"),
    (["--set", "model.layers[1]=sigmod"], "unknown layer type 'sigmod' (did you mean 'sigmoid'?); expected one of"),
    (["--set", "model.init=xavir"], "must be one of xavier, he, lecun, normal, got 'xavir' (a string) (did you mean "
                                    "'xavier'?)"),
])
def test_misspellings_get_a_did_you_mean(args, hint):
    r = runner.invoke(app, ["train", Q, *args, "--dry-run"])
    assert r.exit_code == 2 and hint in r.output


def test_a_misspelled_command_gets_a_did_you_mean():
    r = runner.invoke(app, ["trian"])
    assert r.exit_code == 2 and r.output.strip() == ("error: mlpkit: No such command 'trian'. Did you mean 'train'? "
                                                     "see mlpkit --help.")


def test_an_unrelated_word_gets_no_suggestion():
    r = runner.invoke(app, ["train", Q, "--set", "extra=1", "--dry-run"])
    assert r.exit_code == 2 and "did you mean" not in r.output
