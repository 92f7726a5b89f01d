"""The hostile-input review's findings, one test per row, and property-based tests for the classes behind them.

Each case must end in one line naming the file, key or value, exit 2 (1 for a divergence), no traceback,
and nothing lost or written where it should not be.
"""

from __future__ import annotations

import copy
import io
import json
import os
import struct
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mlpkit.app import api, runfiles
from mlpkit.app.cli import app
from mlpkit.app.configfile import parse_yaml
from mlpkit.app.locking import RunLock
from mlpkit.app.runfiles import CONFIG_KEY, META_KEY
from mlpkit.data import npz as npzio
from mlpkit.data.npz import npz_bytes
from mlpkit.errors import CheckpointError, ConfigError, MlpkitError

from .conftest import CONFIGS

runner = CliRunner()
Q = str(CONFIGS / "quickstart.yaml")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

pytestmark = pytest.mark.slow  # fuzz corpora and whole commands: see `pytest -m "not slow"`


def _one_line(r, code: int = 2) -> str:
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    errors = [line for line in r.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, r.output
    assert len(errors[0]) < 1200, len(errors[0])
    return errors[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished 2-epoch quickstart run with momentum (so its checkpoint holds optimizer state)."""
    run = tmp_path_factory.mktemp("review") / "run"
    r = runner.invoke(app, ["train", Q, "--set", "train.epochs=2", "--out", str(run), "-q"])
    assert r.exit_code == 0, r.output
    return run


def _arrays(path: Path) -> dict[str, np.ndarray]:
    return npzio.read_npz(path, CheckpointError, "test")


def _edited(run: Path, tmp: Path, arrays=None, trainer=None, meta=None, drop=()) -> Path:
    """A copy of the run whose last.npz has edited arrays / trainer state / metadata."""
    a = _arrays(run / "checkpoints" / "last.npz")
    m = json.loads(str(a[META_KEY]))
    for k, v in (trainer or {}).items():
        m["trainer"][k] = v
    for k, v in (meta or {}).items():
        m[k] = v
    a[META_KEY] = np.array(json.dumps(m))
    a.update(arrays or {})
    for k in drop:
        a.pop(k)
    out = tmp / "edited"
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out / "checkpoints" / "last.npz").write_bytes(npz_bytes(a))
    (out / "config.yaml").write_bytes((run / "config.yaml").read_bytes())
    return out


# --------------------------------------------------------------------------- 1: only finite checkpoints


def test_1_a_checkpoint_is_written_only_from_finite_state(tmp_path):
    r = runner.invoke(app, ["train", Q, "--set", "train.weight_decay=1e6", "--checkpoint-every", "1", "--out",
                            str(tmp_path / "wd"), "-q"])
    line = _one_line(r, 1)
    assert "epoch 1, step" in line and "weight decay" in line
    last = tmp_path / "wd" / "checkpoints" / "last.npz"
    a = _arrays(last)  # the step before the explosion was checkpointed, from finite weights
    assert all(np.isfinite(v).all() for k, v in a.items() if not k.startswith("__"))
    assert "the last good checkpoint is kept in" in line
    r = runner.invoke(app, ["train", "--resume", str(tmp_path / "wd"), "--dry-run"])
    assert r.exit_code == 0, r.output


def test_1_without_the_explosion_rule_nan_weights_are_still_never_checkpointed(tmp_path, monkeypatch):
    """The review's own scenario: weights that turn non-finite between two loss checks."""
    from mlpkit.training import divergence

    monkeypatch.setattr(divergence, "EXPLOSION_FACTOR", float("inf"))
    r = runner.invoke(app, ["train", Q, "--set", "train.weight_decay=1e6", "--checkpoint-every", "1", "--out",
                            str(tmp_path / "wd"), "-q"])
    line = _one_line(r, 1)
    assert "NaN or infinite" in line
    a = _arrays(tmp_path / "wd" / "checkpoints" / "last.npz")
    assert all(np.isfinite(v).all() for k, v in a.items() if not k.startswith("__"))
    assert runner.invoke(app, ["train", "--resume", str(tmp_path / "wd"), "--dry-run"]).exit_code == 0


def test_1_checkpoint_bytes_refuses_non_finite_weights():
    from mlpkit.errors import DivergenceError

    trainer = api.prepare(Q)
    trainer.model.layers[0].params["W"][0, 0] = np.nan
    with pytest.raises(DivergenceError, match=r"layers\.0\.W became NaN or infinite"):
        runfiles.checkpoint_bytes(trainer)


# --------------------------------------------------------------------------- 2, 13: YAML


YAML_VALUES = ["2020-13-45", "!!int abc", "!!float ''", "!!timestamp x", "2001-02-30", "1" * 4301, "0x" + "f" * 4000,
               "0b" + "1" * 15000, "!!binary '@@'", "!!python/object:os.system x", "[" * 5000, "*a", "&a [*a]",
               "!!set {a: b}", "!!omap [1]", "{? [a]: b}"]


@pytest.mark.parametrize("value", YAML_VALUES)
def test_2_yaml_constructor_errors_are_one_line(value, write_config):
    r = runner.invoke(app, ["train", Q, "--set", f"seed={value}", "--dry-run"])
    line = _one_line(r)
    assert "--set seed" in line or "seed (set by --set)" in line
    p = write_config(f"seed: {value}\nmodel: {{layers: [{{linear: 10}}]}}\n")
    _one_line(runner.invoke(app, ["train", str(p), "--dry-run"]))


def test_2_resume_epochs_override_goes_through_the_same_loader(run_dir):
    line = _one_line(runner.invoke(app, ["train", "--resume", str(run_dir), "--set", "train.epochs=2020-13-45"]))
    assert "--set train.epochs" in line
    line = _one_line(runner.invoke(app, ["train", "--resume", str(run_dir), "--set", "train.epochs=0"]))
    assert "train.epochs" in line and "must be >= 1" in line


def test_13_duplicate_keys_name_the_key_and_both_lines(write_config):
    p = write_config("train: {epochs: 1}\nmodel: {layers: [{linear: 10}]}\ntrain: {epochs: 99999}\n")
    line = _one_line(runner.invoke(app, ["train", str(p), "--dry-run"]))
    assert "key 'train' is given twice, at lines 1 and 3" in line
    p = write_config("model:\n  layers: [{linear: 10}]\n  init: he\n  init: xavier\n")
    assert "key 'init' is given twice, at lines 3 and 4" in _one_line(runner.invoke(app, ["train", str(p),
                                                                                         "--dry-run"]))


@FUZZ
@given(st.text(max_size=200) | st.sampled_from(YAML_VALUES).map(lambda v: f"a: {v}")
       | st.builds(lambda tag, v: f"x: !!{tag} {v}", st.sampled_from(["int", "float", "bool", "timestamp", "binary",
                                                                      "str", "null", "seq", "map", "set", "omap",
                                                                      "pairs", "merge", "value"]),
                   st.text(max_size=20))
       | st.integers(min_value=4000, max_value=4400).map(lambda n: "seed: " + "7" * n)
       | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_2_the_yaml_loader_raises_only_config_errors(text):
    try:
        parse_yaml(text, "fuzz.yaml")
    except ConfigError as e:
        assert str(e).startswith("fuzz.yaml: ") and "\n" not in str(e)


# --------------------------------------------------------------------------- 3, 11: crafted weight files


def _npy_header(shape_text: str) -> bytes:
    header = ("{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_text + ", }").encode()
    header += b" " * (63 - len(header) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, v in members.items():
            zf.writestr(k, v)
    return buf.getvalue()


def crafted(run: Path) -> dict[str, bytes]:
    a = _arrays(run / "model.npz")
    plain = io.BytesIO()
    np.save(plain, a["layers.0.W"])
    members = {f"{k}.npy": _npy_bytes(v) for k, v in a.items()}
    return {
        "plain .npy": plain.getvalue(),
        "2**40 elements": _zip({**members, "layers.0.W.npy": _npy_header("(1099511627776,)") + b"\0" * 64}),
        "unclosed header": _zip({**members, "layers.0.W.npy": _npy_header("(2,")}),
        "meta [[[": npz_bytes({**a, META_KEY: np.array("[" * 100000)}),
        "config [[[": npz_bytes({**a, CONFIG_KEY: np.array("[" * 100000)}),
        "NaN weight": npz_bytes({**a, "layers.0.W": np.where(np.eye(*a["layers.0.W"].shape) > 0, np.nan,
                                                             a["layers.0.W"]).astype(np.float32)}),
        "inf bias": npz_bytes({**a, "layers.3.b": np.full(a["layers.3.b"].shape, np.inf, np.float32)}),
        "text file": b"hello, this is text\n" * 10,
        "object array": _zip({**members, "evil.npy": _object_npy()}),
        "huge meta int": npz_bytes({**a, META_KEY: np.array('{"format": "mlpkit-weights-v1", "in_features": '
                                                            + "9" * 5000 + "}")}),
    }


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _object_npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize("command", [["evaluate"], ["inspect-grads"], ["inspect-dropout"], ["train", "--resume"]])
def test_3_11_crafted_weight_files_are_one_line_naming_the_file(run_dir, tmp_path, command):
    for name, data in crafted(run_dir).items():
        p = tmp_path / f"{name.replace(' ', '_').replace('*', '')}.npz"
        p.write_bytes(data)
        t0 = time.monotonic()
        line = _one_line(runner.invoke(app, [*command, str(p), "-q"] if command[0] != "evaluate" else
                                       [*command, str(p)]))
        assert str(p) in line, (name, line)
        assert "allow_pickle" not in line and "unsafe" not in line
        assert time.monotonic() - t0 < 5, name
        if ("NaN" in name or "inf" in name) and command[0] != "train":  # train --resume: "final weights only"
            assert "NaN or infinite" in line, line


@FUZZ
@given(st.dictionaries(st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12),
                       st.binary(max_size=300), max_size=4),
       st.lists(st.sampled_from(["(2,", "()", "(-1,)", "(3, 4)", "(10**12,)", "(1 << 40, 1 << 40)", "'x'", "[1, 2]",
                                 "(2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,"
                                 " 2, 2, 2, 2)", "(0,)", "(5,)"]), max_size=3),
       st.binary(max_size=64))
def test_3_the_weight_reader_raises_only_checkpoint_errors(tmp_path_factory, members, shapes, tail):
    members = {f"{k}.npy" if i % 2 else k: v for i, (k, v) in enumerate(members.items())}
    for i, shape in enumerate(shapes):
        members[f"layers.{i}.W.npy"] = _npy_header(shape) + tail
    p = tmp_path_factory.mktemp("fuzz") / "w.npz"
    p.write_bytes(_zip(members))
    try:
        runfiles.load_weights(p)
    except MlpkitError as e:
        assert str(p) in str(e) and "\n" not in str(e)


# --------------------------------------------------------------------------- 4, 6: trainer state


def _names(run_dir: Path) -> list[str]:
    return [k for k in _arrays(run_dir / "model.npz") if k.startswith("layers.")]


STATE_EDITS = {
    "norm_sums empty": dict(trainer={"norm_sums": {}}),
    "norm_sums extra key": dict(trainer={"norm_sums": "EXTRA"}),
    "best_val_acc string": dict(trainer={"best_val_acc": "x"}),
    "best_epoch beyond the run": dict(trainer={"best_epoch": 7}),
    "bad_epochs negative": dict(trainer={"bad_epochs": -1}),
    "rng state 2**200": dict(trainer={"shuffle_rng": "BIG"}),
    "rng state -5": dict(trainer={"dropout_rng": "NEG"}),
    "lr 5.0": dict(trainer={"lr": 5.0}),
    "lr -1": dict(trainer={"lr": -1}),
    "history row with strings": dict(trainer={"history": "STR"}),
    "loss_sum NaN-like": dict(trainer={"loss_sum": "nan"}),
    "norm_count negative": dict(trainer={"norm_count": -1}),
    "epoch as bool": dict(trainer={"epoch": True}),
    "unknown field": dict(trainer={"surprise": 1}),
}


def _state_edit(run_dir: Path, tmp: Path, name: str) -> Path:
    ck = _arrays(run_dir / "checkpoints" / "last.npz")
    m = json.loads(str(ck[META_KEY]))["trainer"]
    edit = copy.deepcopy(STATE_EDITS[name])
    t = edit.get("trainer", {})
    if t.get("norm_sums") == "EXTRA":
        t["norm_sums"] = {**m["norm_sums"], "layers.9.W": 0.0}
    if t.get("shuffle_rng") == "BIG":
        t["shuffle_rng"] = {**m["shuffle_rng"], "state": {**m["shuffle_rng"]["state"], "state": 2**200}}
    if t.get("dropout_rng") == "NEG":
        t["dropout_rng"] = {**m["dropout_rng"], "state": {**m["dropout_rng"]["state"], "state": -5}}
    if t.get("history") == "STR":
        t["history"] = [{**row, "train_loss": "low"} for row in m["history"]]
    return _edited(run_dir, tmp, trainer=t, meta=edit.get("meta"))


@pytest.mark.parametrize("name", list(STATE_EDITS))
def test_4_6_edited_trainer_state_is_refused_before_any_work(run_dir, tmp_path, name):
    run = _state_edit(run_dir, tmp_path, name)
    before = sorted(p.name for p in run.rglob("*"))
    t0 = time.monotonic()
    line = _one_line(runner.invoke(app, ["train", "--resume", str(run), "--set", "train.epochs=3", "-q"]))
    assert str(run / "checkpoints" / "last.npz") in line
    assert time.monotonic() - t0 < 5
    assert sorted(p.name for p in run.rglob("*")) == before  # nothing written


def test_6_missing_optimizer_state_is_named(run_dir, tmp_path):
    names = [f"optim.{n}" for n in _names(run_dir)]
    run = _edited(run_dir, tmp_path, drop=names)
    line = _one_line(runner.invoke(app, ["train", "--resume", str(run), "--set", "train.epochs=3", "-q"]))
    assert "the optimizer state (momentum velocity) is missing for optim.layers.0.W" in line
    run = _edited(run_dir, tmp_path, drop=names[:1])
    assert "is missing" in _one_line(runner.invoke(app, ["train", "--resume", str(run), "--set", "train.epochs=3"]))


@FUZZ
@given(st.sampled_from(["epoch", "step", "shuffle_rng", "dropout_rng", "loss_sum", "lr", "norm_sums", "norm_count",
                        "history", "best_val_acc", "best_epoch", "bad_epochs"]),
       st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5)
       | st.lists(st.integers(), max_size=3) | st.dictionaries(st.text(max_size=3), st.integers(), max_size=3))
def test_4_any_edit_of_any_state_field_is_refused_or_harmless(run_dir, tmp_path_factory, field, value):
    run = _edited(run_dir, tmp_path_factory.mktemp("st"), trainer={field: value})
    try:
        api.check_resume(run, overrides=("train.epochs=3",))
    except MlpkitError as e:
        assert "\n" not in str(e)


# --------------------------------------------------------------------------- 5, 19: user datasets


def _npz(tmp: Path, **changes) -> Path:
    rng = np.random.default_rng(0)
    a = {"x_train": rng.integers(0, 256, (30, 4), dtype=np.uint8), "y_train": np.arange(30) % 3,
         "x_test": rng.integers(0, 256, (6, 4), dtype=np.uint8), "y_test": np.arange(6) % 3}
    a.update(changes)
    p = tmp / "d.npz"
    np.savez(p, **a)
    return p


@pytest.mark.parametrize("changes,expect", [
    ({"y_train": np.r_[10**9, np.arange(29) % 3]}, "has the label 1000000000"),
    ({"y_train": np.arange(30) % 3 * 2}, "no example of class 1"),
    ({"y_train": np.zeros(30, int), "y_test": np.zeros(6, int)}, "a single class"),
    ({"x_train": np.zeros((30, 0), np.uint8), "x_test": np.zeros((6, 0), np.uint8)}, "at least one feature"),
    ({"x_train": np.zeros((0, 4), np.uint8), "y_train": np.zeros(0, int)}, "N > 0"),
    ({"x_train": np.full((30, 4), 1e300), "x_test": np.zeros((6, 4))}, "beyond float32's range"),
])
def test_5_19_bad_datasets_are_refused_before_work(tmp_path, changes, expect):
    p = _npz(tmp_path, **changes)
    for args in (["data", "info", str(p)], ["train", Q, "--set", f"data.dataset={p}", "--set",
                                             "model.layers[3].linear=3", "--dry-run"]):
        t0 = time.monotonic()
        with _no_runtime_warning():
            line = _one_line(runner.invoke(app, args))
        assert expect in line and str(p) in line
        assert time.monotonic() - t0 < 3


class _no_runtime_warning:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("error", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


# --------------------------------------------------------------------------- 7, 16, 17: resuming


def _tree(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_7_resume_dry_run_checks_and_writes_nothing(run_dir):
    before = _tree(run_dir)
    r = runner.invoke(app, ["train", "--resume", str(run_dir), "--set", "train.epochs=3", "--dry-run"])
    assert r.exit_code == 0
    assert "is valid; the run would resume at epoch 3 of 3; nothing was written" in " ".join(r.output.split())
    assert _tree(run_dir) == before
    r = runner.invoke(app, ["train", "--resume", str(run_dir), "--dry-run", "--json"])  # finished: nothing to do
    assert r.exit_code == 2 and "has finished all 2 of its epochs" in r.output and _tree(run_dir) == before


def test_16_stale_temporary_files_are_removed_on_resume(run_dir, tmp_path):
    run = tmp_path / "copy"
    for rel, data in _tree(run_dir).items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_bytes(data)
    stale = [run / "checkpoints" / ".last.npz.abc123.tmp", run / ".metrics.jsonl.x9.tmp"]
    for p in stale:
        p.write_bytes(b"\0" * 1000)
    keep = run / "notes.tmp"
    keep.write_text("mine")
    r = runner.invoke(app, ["train", "--resume", str(run), "--set", "train.epochs=3", "-q"])
    assert r.exit_code == 0, r.output
    assert not any(p.exists() for p in stale) and keep.read_text() == "mine"


def test_17_blas_threads_are_recorded_and_a_change_warned_about(run_dir, monkeypatch):
    meta = json.loads(str(_arrays(run_dir / "checkpoints" / "last.npz")[META_KEY]))
    assert isinstance(meta["blas_threads"], int) and meta["blas_threads"] >= 1
    monkeypatch.setattr(api, "blas_threads", lambda: meta["blas_threads"] + 1)
    r = runner.invoke(app, ["train", "--resume", str(run_dir), "--set", "train.epochs=3", "--dry-run"])
    assert r.exit_code == 0
    assert (f"warning: the run was checkpointed with {meta['blas_threads']} BLAS thread(s) and resumes with "
            f"{meta['blas_threads'] + 1}") in r.output


def test_stopped_before_the_first_checkpoint_says_so(tmp_path):
    run = tmp_path / "early"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("model: {layers: [{linear: 10}]}\n")
    line = _one_line(runner.invoke(app, ["train", "--resume", str(run)]))
    assert "the run was stopped before its first checkpoint was written" in line


# --------------------------------------------------------------------------- 8, 9: the run folder


def test_8_a_running_run_is_locked(run_dir, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    lock = RunLock(out)
    try:
        line = _one_line(runner.invoke(app, ["train", Q, "--out", str(out), "-q"]))
        assert f"another mlpkit process (pid {os.getpid()}) is writing this run" in line
    finally:
        lock.close()
    assert runner.invoke(app, ["train", Q, "--set", "train.epochs=1", "--out", str(out), "-q"]).exit_code == 0


def test_8_a_finished_run_is_not_overwritten_without_force(tmp_path):
    out = tmp_path / "done"
    assert runner.invoke(app, ["train", Q, "--set", "train.epochs=1", "--out", str(out), "-q"]).exit_code == 0
    before = (out / "model.npz").read_bytes()
    line = _one_line(runner.invoke(app, ["train", Q, "--set", "train.epochs=2", "--out", str(out), "-q"]))
    assert "already holds a run" in line and "--force" in line
    assert (out / "model.npz").read_bytes() == before
    r = runner.invoke(app, ["train", Q, "--set", "train.epochs=2", "--set", "seed=3", "--out", str(out), "-q",
                            "--force"])
    assert r.exit_code == 0 and (out / "model.npz").read_bytes() != before
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize("out", ["", "   "])
def test_8_empty_out_is_refused(tmp_path, out, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = _one_line(runner.invoke(app, ["train", Q, "--out", out, "-q"]))
    assert "--out" in line and "must not be empty" in line
    assert list(tmp_path.iterdir()) == []


def test_9_symlinks_in_the_run_folder_are_never_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".write-test").symlink_to(victim)
    (out / ".lock").symlink_to(victim)
    line = _one_line(runner.invoke(app, ["train", Q, "--set", "train.epochs=1", "--out", str(out), "-q"]))
    assert ".lock" in line and victim.read_text() == "precious"
    (out / ".lock").unlink()
    assert runner.invoke(app, ["train", Q, "--set", "train.epochs=1", "--out", str(out), "-q"]).exit_code == 0
    assert victim.read_text() == "precious"
    assert runner.invoke(app, ["train", "--resume", str(out), "--set", "train.epochs=2", "-q"]).exit_code == 0
    assert victim.read_text() == "precious"
    other = tmp_path / "elsewhere"
    other.mkdir()
    out2 = tmp_path / "out2"
    out2.mkdir()
    (out2 / "checkpoints").symlink_to(other)
    line = _one_line(runner.invoke(app, ["train", Q, "--out", str(out2), "-q", "--force"]))
    assert "checkpoints: is a symbolic link" in line and list(other.iterdir()) == []


# --------------------------------------------------------------------------- 10: stored paths


def test_10_a_weights_files_stored_data_dir_never_creates_folders(tmp_path, monkeypatch):
    from .idx_files import register, write_idx_dataset

    write_idx_dataset(tmp_path / "src")
    register(monkeypatch, tmp_path / "src")
    monkeypatch.setenv("MLPKIT_DATA_DIR", str(tmp_path / "src"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {dataset: tiny}\nmodel: {layers: [{linear: 10}]}\ntrain: {epochs: 1}\n")
    assert runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "run"), "-q"]).exit_code == 0
    a = _arrays(tmp_path / "run" / "model.npz")
    stored = json.loads(str(a[CONFIG_KEY]))
    target = tmp_path / "any" / "path"
    stored["data"]["data_dir"] = str(target)
    crafted = tmp_path / "crafted.npz"
    crafted.write_bytes(npz_bytes({**a, CONFIG_KEY: np.array(json.dumps(stored))}))
    r = runner.invoke(app, ["evaluate", str(crafted)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["inspect-grads", str(crafted), "-q"])
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "any").exists()


# --------------------------------------------------------------------------- 12: explosion


def test_12_an_exploding_loss_stops_the_run(tmp_path):
    r = runner.invoke(app, ["train", Q, "--set", "train.lr=1e6", "--out", str(tmp_path / "x"), "-q",
                            "--checkpoint-every", "1"])
    line = _one_line(r, 1)
    assert "the loss exploded to" in line and "epoch 1, step 2" in line and "layers." in line
    assert "the last good checkpoint is kept in" in line and not (tmp_path / "x" / "model.npz").exists()


# --------------------------------------------------------------------------- 15, 20: files and messages


def test_15_non_regular_config_files_are_refused_at_once(tmp_path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for p, kind in (("/dev/zero", "device"), (str(fifo), "FIFO")):  # a FIFO's open would block: it returns
        line = _one_line(runner.invoke(app, ["train", p, "--dry-run"]))
        assert line == f"error: {p}: is not a regular file ({kind}); give a YAML config file."


def test_20_usage_errors_are_one_line_with_the_fix():
    line = _one_line(runner.invoke(app, ["train", Q, "--batch-size", "3"]))
    assert line == "error: mlpkit train: No such option: --batch-size (use --set train.batch_size=VALUE); see " \
                   "mlpkit train --help."
    line = _one_line(runner.invoke(app, ["train", Q, "--momentum", "0.5"]))
    assert "use --set train.momentum=VALUE" in line
    _one_line(runner.invoke(app, ["evaluate"]))
    _one_line(runner.invoke(app, ["gradcheck", "--samples", "zero"]))


def test_20_long_keys_and_numbers_are_shortened(write_config):
    # the bound leaves out the config's own path, which is as long as the checkout's folder makes it
    line = _one_line(runner.invoke(app, ["train", Q, "--set", "train." + "k" * 5000 + "=1", "--dry-run"]))
    assert len(line) - len(Q) < 360 and "(5,006 characters)" in line
    line = _one_line(runner.invoke(app, ["train", Q, "--set", "seed=" + "9" * 4300, "--dry-run"]))
    assert len(line) - len(Q) < 360 and "an integer of about 4,301 digits" in line
    p = write_config("k" * 5000 + ": 1\nmodel: {layers: [{linear: 10}]}\n")
    assert len(_one_line(runner.invoke(app, ["train", str(p), "--dry-run"]))) - len(str(p)) < 360


def test_20_file_contents_are_never_echoed(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$SECRETHASH:19000:0:99999:7:::\n")
    line = _one_line(runner.invoke(app, ["train", str(secret), "--dry-run"]))
    assert "SECRETHASH" not in line and ("got a string" in line or "key that is not a name" in line)
    txt = tmp_path / "notes.npz"
    txt.write_text("just text\n")
    for args in (["evaluate", str(txt)], ["data", "info", str(txt)]):
        line = _one_line(runner.invoke(app, args))
        assert "allow_pickle" not in line and "just text" not in line


@pytest.mark.parametrize("field,value", [("pixel_max", "255"), ("scale", -1.0), ("shift", float("nan")),
                                          ("image_shape", [28, "28"]), ("class_names", [1, 2]),
                                          ("location", "\x00"), ("image_shape", [10**9])])
def test_a_crafted_data_record_is_refused_by_every_reader(run_dir, tmp_path, field, value):
    a = _arrays(run_dir / "model.npz")
    meta = json.loads(str(a[META_KEY]))
    meta["data"][field] = value
    p = tmp_path / "crafted.npz"
    p.write_bytes(npz_bytes({**a, META_KEY: np.array(json.dumps(meta))}))
    img = tmp_path / "x.npy"
    np.save(img, np.zeros((1, 8, 8), np.uint8))
    for args in (["evaluate", str(p)], ["predict", str(p), str(img)], ["export", str(p), "-o", str(tmp_path / "m.onnx")],
                 ["inspect-grads", str(p), "-q"]):
        line = _one_line(runner.invoke(app, args))
        assert "its record of where the data came from is malformed" in line and str(p) in line


# --------------------------------------------------------------------------- the new readers: images, folders, runs

IMAGE_FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@IMAGE_FUZZ
@given(st.sampled_from([".png", ".jpg", ".bmp", ".gif", ".npy", ".npz", ".csv", ".tif", ".webp"]),
       st.binary(max_size=400) | st.sampled_from([b"\x89PNG\r\n\x1a\n", b"GIF89a", b"\x93NUMPY\x01\x00", b"BM",
                                                  b"1,2,3\n", b"label\n"]))
def test_predict_reads_any_bytes_as_one_line_or_an_answer(run_dir, tmp_path_factory, suffix, data):
    p = tmp_path_factory.mktemp("pf") / f"input{suffix}"
    p.write_bytes(data)
    r = runner.invoke(app, ["predict", str(run_dir), str(p), "--json"])
    assert r.exit_code in (0, 2) and "Traceback" not in r.output, r.output
    if r.exit_code == 2:
        assert str(p) in " ".join(r.output.split())


@IMAGE_FUZZ
@given(st.lists(st.tuples(st.sampled_from(["metrics.jsonl", "results.json", "run.json", "config.yaml"]),
                          st.binary(max_size=200) | st.sampled_from([b'{"epoch": "x"}\n', b"[1, 2]", b"{}",
                                                                     b'{"status": 5, "started": []}', b"model: 7"])),
                min_size=1, max_size=4))
def test_runs_compare_and_plot_survive_damaged_run_files(done_runs, tmp_path_factory, files):
    root = tmp_path_factory.mktemp("dmg")
    run = root / "r"
    for src in done_runs.iterdir():
        if src.is_file():
            (run / src.name).parent.mkdir(parents=True, exist_ok=True)
            (run / src.name).write_bytes(src.read_bytes())
    (run / "checkpoints").mkdir(exist_ok=True)
    for name, data in files:
        (run / name).write_bytes(data)
    for args in (["runs", str(root), "--json"], ["compare", str(run), str(done_runs), "--json"],
                 ["plot", str(run), "-o", str(root / "c.png"), "--json"]):
        r = runner.invoke(app, args)
        assert r.exit_code in (0, 2) and "Traceback" not in r.output, (args, r.output)


@pytest.fixture(scope="module")
def done_runs(tmp_path_factory):
    run = tmp_path_factory.mktemp("done") / "run"
    assert runner.invoke(app, ["train", Q, "--epochs", "2", "--out", str(run), "-q"]).exit_code == 0
    return run


@IMAGE_FUZZ
@given(st.sampled_from([".png", ".jpg", ".bmp", ".txt", ""]), st.binary(max_size=300))
def test_an_image_folder_with_any_bytes_is_one_line_or_a_dataset(tmp_path_factory, suffix, data):
    root = tmp_path_factory.mktemp("fold")
    for c in ("a", "b"):
        (root / c).mkdir()
        (root / c / f"x{suffix}").write_bytes(data)
    r = runner.invoke(app, ["data", "info", str(root), "--json"])
    assert r.exit_code in (0, 2) and "Traceback" not in r.output, r.output
    if r.exit_code == 2:
        assert str(root) in " ".join(r.output.split())
