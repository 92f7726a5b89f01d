"""Hostile input: malformed configs (property-based) and a corpus of corrupt files.

Every case must end with exit code 0 or 2 and, when 2, one line of explanation,
never a traceback and never a hang.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import zipfile

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mlpkit.app.cli import app
from mlpkit.app.runfiles import CONFIG_KEY, META_KEY
from mlpkit.data.npz import npz_bytes

from .conftest import CONFIGS

runner = CliRunner()

BASE = {
    "seed": 0,
    "data": {"dataset": "digits", "validation": 100, "train_eval_samples": 100},
    "model": {"init": "xavier", "bias_init": "zeros", "dtype": "float32", "head": "softmax_ce",
              "layers": [{"linear": 16}, "sigmoid", {"dropout": 0.5}, {"linear": {"out_features": 10, "init": "he"}}]},
    "train": {"epochs": 2, "batch_size": 16, "lr": 0.1, "momentum": 0.0, "weight_decay": 0.0},
}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["linear", "sigmoid", "relu", "dropout", "mnist", "digits", "1e30", "nan", "-1", "0", "",
                     "softmax_ce", "xavier", "float64", "x.npz", "/dev/null", "a\x00b"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)

pytestmark = pytest.mark.slow  # fuzz corpora and whole commands: see `pytest -m "not slow"`


def _paths(node, prefix=()):
    """Every (path) to a value in nested dicts/lists."""
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


@st.composite
def malformed(draw):
    """A config mutated a few times: values replaced, keys added or removed, or plain garbage text."""
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.text(max_size=200))
    if kind == 1:
        return yaml.safe_dump(draw(values))
    cfg = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(cfg) if p]
        path = draw(st.sampled_from(paths))
        parent = cfg
        for k in path[:-1]:
            parent = parent[k]
        op = draw(st.integers(0, 3))
        if op == 0 or not isinstance(parent, (dict, list)):
            parent[path[-1]] = draw(values)
        elif op == 1 and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(values)
        elif op == 2:
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(scalars)
    return yaml.safe_dump(cfg, allow_unicode=True)


def _check(result) -> None:
    assert result.exit_code in (0, 2), (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.output


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(text=malformed())
def test_malformed_configs_exit_0_or_2(tmp_path_factory, text):
    path = tmp_path_factory.getbasetemp() / "hostile.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass") if "\ud800" not in text else path.write_bytes(
        text.encode("utf-8", "replace"))
    _check(runner.invoke(app, ["train", str(path), "--dry-run", "--offline"]))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(key=st.sampled_from(["train.lr", "train.epochs", "model.layers[0].linear", "model.layers[2].dropout",
                            "model.layers", "data.dataset", "seed", "model.init", "train", "x.y", "model.layers[9]"]),
       value=st.text(max_size=30))
def test_malformed_overrides_exit_0_or_2(key, value):
    _check(runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--dry-run", "--offline", "--set",
                               f"{key}={value}"]))


@pytest.mark.parametrize("text", [
    "model: " + "[" * 3000 + "]" * 3000,
    "\n".join([f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" if i else "a0: &a0 [1, 2, 3]"
               for i in range(12)]) + "\nmodel: {layers: *a11}\n",
    "data: &d {dataset: digits}\nmodel: {layers: [{linear: 10}]}\ntrain: {epochs: 1e30}\n",
    "model: {layers: [{linear: 1000000000}, {linear: 10}]}\n",
    "model: {layers: [{linear: 60000}, {linear: 60000}, {linear: 10}]}\n",
    "model: !!python/object/apply:os.system ['true']\n",
    "model: {layers: [{linear: 10}]}\ntrain: {lr: .nan}\n",
    "model: {layers: [{linear: 10}]}\ntrain: {batch_size: -5}\n",
    "model: {layers: [{linear: 10}]}\ntrain: {epochs: '10'}\n",
    "model: {layers: [{conv2d: 3}, {linear: 10}]}\n",
    "model: {layers: [{linear: 10}]}\ndata: {validation: 5000}\n",
    "\t\tmodel: x\n",
    "---\n...\n---\n",
])
def test_named_hostile_configs(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    r = runner.invoke(app, ["train", str(p), "--dry-run", "--offline"])
    _check(r)
    assert r.exit_code == 2


def test_not_utf8_and_huge_config(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_bytes(b"model: \xff\xfe\n")
    r = runner.invoke(app, ["train", str(p), "--dry-run"])
    _check(r)
    assert r.exit_code == 2 and "is not UTF-8 text" in r.output
    p.write_bytes(b"#" * 2_000_000)
    r = runner.invoke(app, ["train", str(p), "--dry-run"])
    assert r.exit_code == 2 and "is larger than 1,000,000 bytes" in r.output


# --------------------------------------------------------------------------- corrupt files


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("good") / "run"
    r = runner.invoke(app, ["train", str(CONFIGS / "quickstart.yaml"), "--set", "train.epochs=1", "--out", str(run),
                            "-q"])
    assert r.exit_code == 0
    return run


def _npz_arrays(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _meta(arrays) -> dict:
    return json.loads(str(arrays[META_KEY]))


def _with(arrays, changes: dict) -> bytes:
    """The arrays with some replaced (None: removed), as .npz bytes."""
    out = dict(arrays)
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return npz_bytes(out)


def _corpus(run) -> dict[str, bytes]:
    ck = (run / "checkpoints" / "last.npz").read_bytes()
    a = _npz_arrays(run / "checkpoints" / "last.npz")
    meta = _meta(a)

    def meta_with(**kw):
        m = copy.deepcopy(meta)
        for k, v in kw.items():
            if k in m["trainer"] or k == "history":
                m["trainer"][k] = v
            else:
                m[k] = v
        return np.array(json.dumps(m))

    def trainer_without(key):
        m = copy.deepcopy(meta)
        del m["trainer"][key]
        return np.array(json.dumps(m))

    cfg = json.loads(str(a[CONFIG_KEY]))
    bad_cfg = copy.deepcopy(cfg)
    bad_cfg["train"]["lr"] = -1
    obj = io.BytesIO()
    np.savez(obj, **dict(a.items()), evil=np.array([{"x": 1}], dtype=object))
    only_text = io.BytesIO()
    with zipfile.ZipFile(only_text, "w") as zf:
        zf.writestr("readme.txt", "hello")
    return {
        "empty": b"",
        "random bytes": bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)),
        "truncated 10%": ck[: len(ck) // 10],
        "truncated 50%": ck[: len(ck) // 2],
        "truncated 90%": ck[: len(ck) * 9 // 10],
        "truncated by one byte": ck[:-1],
        "text": b"this is not a checkpoint\n",
        "gzip IDX": gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02\x01\x02"),
        "zip without arrays": only_text.getvalue(),
        "no config": _with(a, {CONFIG_KEY: None}),
        "no meta": _with(a, {META_KEY: None}),
        "meta not JSON": _with(a, {META_KEY: np.array("{not json")}),
        "wrong format": _with(a, {META_KEY: meta_with(format="other-v9")}),
        "missing weight": _with(a, {"layers.0.W": None}),
        "wrong weight shape": _with(a, {"layers.0.W": np.zeros((3, 3), np.float32)}),
        "integer weights": _with(a, {"layers.0.W": np.zeros(a["layers.0.W"].shape, np.int32)}),
        "object array (pickle)": obj.getvalue(),
        "invalid stored config": _with(a, {CONFIG_KEY: np.array(json.dumps(bad_cfg))}),
        "config not JSON": _with(a, {CONFIG_KEY: np.array("[[[")}),
        "trainer state missing epoch": _with(a, {META_KEY: trainer_without("epoch")}),
        "step out of range": _with(a, {META_KEY: meta_with(step=10**6)}),
        "history length mismatch": _with(a, {META_KEY: meta_with(history=[])}),
        "rng state malformed": _with(a, {META_KEY: meta_with(shuffle_rng={"bit_generator": "MT19937"})}),
        "optimizer array wrong shape": _with(a, {"optim.layers.0.W": np.zeros((2, 2), np.float32)}),
        "unexpected array": _with(a, {"surprise": np.zeros(3)}),
        "final weights, not a checkpoint": (run / "model.npz").read_bytes(),
        "history entries malformed": _with(a, {META_KEY: meta_with(history=[{"epoch": "x"}])}),
    }


def test_corrupt_checkpoint_corpus(good_run, tmp_path):
    corpus = _corpus(good_run)
    assert len(corpus) >= 20
    for name, data in corpus.items():
        p = tmp_path / f"{name.replace(' ', '_')}.npz"
        p.write_bytes(data)
        r = runner.invoke(app, ["train", "--resume", str(p), "-q"])
        _check(r)
        assert r.exit_code == 2, (name, r.output)
        assert str(p) in r.output, (name, r.output)
        r = runner.invoke(app, ["evaluate", str(p)])
        _check(r)


def test_corrupt_run_folders(tmp_path):
    r = runner.invoke(app, ["train", "--resume", str(tmp_path / "missing")])
    _check(r)
    assert r.exit_code == 2 and "no such run folder" in r.output
    (tmp_path / "empty").mkdir()
    r = runner.invoke(app, ["evaluate", str(tmp_path / "empty")])
    _check(r)
    assert r.exit_code == 2


def test_corrupt_data_files_corpus(tmp_path):
    good = {"x_train": np.zeros((4, 2), np.uint8), "y_train": np.zeros(4, np.int64),
            "x_test": np.zeros((2, 2), np.uint8), "y_test": np.zeros(2, np.int64)}
    cases = {
        "empty": b"",
        "garbage": b"\x00\x01garbage",
        "truncated": npz_bytes(good)[:100],
        "labels negative": npz_bytes({**good, "y_train": -np.ones(4, np.int64)}),
        "images 1-d": npz_bytes({**good, "x_train": np.zeros(4, np.uint8)}),
        "int16 images": npz_bytes({**good, "x_train": np.zeros((4, 2), np.int16)}),
        "inf images": npz_bytes({**good, "x_test": np.full((2, 2), np.inf, np.float32)}),
    }
    for name, data in cases.items():
        p = tmp_path / f"{name.replace(' ', '_')}.npz"
        p.write_bytes(data)
        r = runner.invoke(app, ["data", "info", str(p)])
        _check(r)
        assert r.exit_code == 2 and str(p) in r.output, (name, r.output)
