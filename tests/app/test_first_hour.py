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


# --------------------------------------------------------------------------- output details


def test_the_confusion_matrix_stays_a_matrix_at_60_columns(done_run, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    r = runner.invoke(app, ["evaluate", str(done_run)])
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 60
    rule = next(i for i, line in enumerate(lines) if line.strip().startswith("─"))
    assert lines[rule - 1].split() == [*map(str, range(10)), "acc", "%"]
    rows = [line.split() for line in lines[rule + 1:] if line.strip()]
    assert [row[0] for row in rows] == [str(i) for i in range(10)]  # ten rows of ten counts and an accuracy
    assert all(len(row) == 12 for row in rows)


def test_help_shows_no_type_beside_a_flag():
    for args in (["--help"], ["train", "--help"], ["data", "--help"], ["data", "list", "--help"], ["evaluate", "-h"]):
        r = runner.invoke(app, args, env={"COLUMNS": "120"})
        assert r.exit_code == 0 and "<bool>" not in r.output and "--help" in r.output, args


def test_one_epoch_is_singular_and_piped_lines_carry_no_trailing_spaces(tmp_path):
    r = runner.invoke(app, ["train", Q, "--epochs", "1", "--out", str(tmp_path / "one")])
    assert r.exit_code == 0 and "; 1 epoch in " in r.output and "1 epochs" not in r.output
    for args in (["evaluate", str(tmp_path / "one")], ["compare", str(tmp_path / "one"), str(tmp_path / "one")],
                 ["runs", str(tmp_path)]):
        out = runner.invoke(app, args).stdout
        assert out.strip() and [line for line in out.splitlines() if line != line.rstrip()] == [], args
    assert [line for line in r.stdout.splitlines() if line != line.rstrip()] == []


def test_compare_shows_two_architectures_whole(done_run, tmp_path):
    other = tmp_path / "other"
    assert runner.invoke(app, ["train", Q, "--epochs", "1", "--set", "model.layers[0].linear=64", "--set",
                               "model.layers[2].dropout=0.5", "--set", "train.lr=0.05", "--out", str(other),
                               "-q"]).exit_code == 0
    r = runner.invoke(app, ["compare", str(done_run), str(other)], env={"COLUMNS": "60"})
    assert r.exit_code == 0
    assert f"  {done_run.name}: linear 128 → sigmoid → dropout 0.2 → linear 10" in r.output.splitlines()
    assert f"  {other.name}: linear 64 → sigmoid → dropout 0.5 → linear 10" in r.output.splitlines()
    assert "model.layers[" not in r.output and "train.lr" in r.output and "0.05" in r.output
    assert "0.0500" not in r.output


def test_the_resolved_config_is_block_style(done_run):
    text = (done_run / "config.yaml").read_text()
    assert "{" not in text and "  - linear: 128\n  - sigmoid\n  - dropout: 0.2\n" in text


def test_predict_says_which_files_of_a_folder_it_skipped(done_run, tmp_path):
    from PIL import Image

    folder = tmp_path / "pics"
    folder.mkdir()
    pic = Image.new("L", (20, 20), 255)
    pic.paste(0, (8, 3, 12, 17))  # a stroke: something to read
    pic.save(folder / "a.png")
    (folder / "notes.txt").write_text("x")
    (folder / "photo.heic").write_bytes(b"x")
    (folder / ".hidden").write_text("x")
    r = runner.invoke(app, ["predict", str(done_run), str(folder)])
    assert r.exit_code == 0
    assert (f"{folder}: skipped 2 files that are not a picture (notes.txt, photo.heic); pictures end in .png, .jpg, "
            ".jpeg, .bmp, ...") in r.output.replace("\n", " ")


def test_onnx_metadata_names_the_pixel_range_as_a_person_writes_it(done_run, tmp_path):
    onnx = pytest.importorskip("onnx")
    out = tmp_path / "m.onnx"
    assert runner.invoke(app, ["export", str(done_run), "--format", "onnx", "-o", str(out)]).exit_code == 0
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["input"].startswith("float32 pixels in the dataset's stored units (0..16), ")


# --------------------------------------------------------------------------- looking at a dataset


def test_data_preview_of_a_dataset_shows_each_class(monkeypatch):
    r = runner.invoke(app, ["data", "preview", "digits", "-n", "3", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["dataset"] == "digits" and data["class_names"] == [str(i) for i in range(10)]
    assert sum(data["counts"]) == 1437 and len(data["counts"]) == 10
    assert [np.asarray(e).shape for e in data["examples"]] == [(3, 8, 8)] * 10
    monkeypatch.setenv("COLUMNS", "60")
    r = runner.invoke(app, ["data", "preview", "digits"])
    lines = r.stdout.splitlines()
    assert lines[0] == "digits: 1,437 training examples in 10 classes"
    assert [line.split(":")[0] for line in lines if line.endswith(" examples")] == [str(i) for i in range(10)]
    assert max(len(line) for line in lines) <= 60


def test_data_preview_writes_labelled_grids(tmp_path):
    from PIL import Image

    out = tmp_path / "classes.png"
    r = runner.invoke(app, ["data", "preview", "digits", "-n", "4", "-o", str(out)])
    assert r.exit_code == 0 and r.output.strip() == f"preview written to {out}"
    with Image.open(out) as im:
        grid = np.asarray(im.convert("L"))
    assert grid.shape[1] > 4 * 8 * 3  # four 8×8 digits at zoom 3, plus the labels' margin
    label_column = grid[:, :10]
    assert (label_column < 128).any()  # the class labels are drawn at the left
    r = runner.invoke(app, ["data", "preview", Q, "--set", "data.augment.affine.rotate=10", "-n", "2",
                            "-o", str(tmp_path / "aug.png")])
    assert r.exit_code == 0 and (tmp_path / "aug.png").is_file()


def test_data_preview_refuses_set_on_a_dataset():
    r = runner.invoke(app, ["data", "preview", "digits", "--set", "seed=1"])
    assert r.exit_code == 2 and r.output.strip() == "error: --set applies to configs; digits is a dataset."
