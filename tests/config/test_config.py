"""Config validation: every bad value is one sentence naming the file and the key path."""

from __future__ import annotations

import pytest

from mlpkit.app.configfile import config_to_yaml, load_config, parse_yaml
from mlpkit.config.schema import Config
from mlpkit.config.validate import config_from_dict
from mlpkit.errors import ConfigError

from ..conftest import CONFIGS

BASE = """\
seed: 0
data:
  dataset: digits
model:
  layers:
    - linear: 32
    - sigmoid
    - dropout: 0.5
    - linear: 10
train:
  epochs: 2
  batch_size: 16
  lr: 0.1
"""


def test_shipped_configs_are_valid():
    for path in sorted(CONFIGS.rglob("*.yaml")):
        if path.parent.name == "sweeps":  # sweep files, checked by the sweep loader
            continue
        assert isinstance(load_config(path), Config), path


def test_shipped_sweeps_are_valid():
    pytest.importorskip("optuna")
    from mlpkit.app.sweep import load_sweep

    sweeps = sorted((CONFIGS / "sweeps").glob("*.yaml"))
    assert sweeps and all(load_sweep(p).trials > 0 for p in sweeps)


def test_defaults_and_short_form(write_config):
    cfg = load_config(write_config(BASE))
    assert [s.type for s in cfg.model.layers] == ["linear", "sigmoid", "dropout", "linear"]
    assert cfg.model.layers[0].out_features == 32 and cfg.model.layers[2].p == 0.5
    assert cfg.model.init == "xavier" and cfg.model.dtype == "float32" and cfg.train.momentum == 0.0


def test_long_form_layers(write_config):
    text = BASE.replace("- linear: 32", "- linear: {out_features: 32, init: he, bias_init: normal, bias_std: 0.5}")
    text = text.replace("- dropout: 0.5", "- dropout: {p: 0.25}").replace("- sigmoid", "- sigmoid: {}")
    cfg = load_config(write_config(text))
    first = cfg.model.layers[0]
    assert (first.out_features, first.init, first.bias_init, first.bias_std) == (32, "he", "normal", 0.5)
    assert cfg.model.layers[2].p == 0.25


def test_yaml_12_floats_are_numbers(write_config):
    cfg = load_config(write_config(BASE.replace("lr: 0.1", "lr: 1e-3")))
    assert cfg.train.lr == 1e-3


def test_round_trip_through_yaml(write_config):
    text = BASE.replace("- linear: 32", "- linear: {out_features: 32, init: he}")
    cfg = load_config(write_config(text))
    again = load_config(write_config(config_to_yaml(cfg), "again.yaml"))
    assert again == cfg


BAD = [
    # (replace this, with that, expected message fragment)
    ("lr: 0.1", "lr: 0", "train.lr: must be > 0, got 0.0"),
    ("lr: 0.1", "lr: -1", "train.lr: must be > 0, got -1.0"),
    ("lr: 0.1", "lr: fast", "train.lr: must be a number, got 'fast' (a string)"),
    ("lr: 0.1", "lr: .nan", "train.lr: must be a finite number, got nan"),
    ("batch_size: 16", "batch_size: 0", "train.batch_size: must be >= 1, got 0"),
    ("batch_size: 16", "batch_size: 1.5", "train.batch_size: must be an integer, got 1.5"),
    ("epochs: 2", "epochs: 0", "train.epochs: must be >= 1, got 0"),
    ("epochs: 2", "epochs: 1.0e30", "train.epochs: must be an integer, got 1e+30"),
    ("epochs: 2", "epochs: true", "train.epochs: must be an integer, got True (a boolean)"),
    ("- dropout: 0.5", "- dropout: 1.0", "model.layers[2].dropout: must be in [0, 1), got 1.0"),
    ("- dropout: 0.5", "- dropout: -0.1", "model.layers[2].dropout: must be >= 0, got -0.1"),
    ("- dropout: 0.5", "- dropout: {p: 1.5}", "model.layers[2].dropout.p: must be in [0, 1), got 1.5"),
    ("- dropout: 0.5", "- dropout: {rate: 0.5}", "model.layers[2].dropout.rate: unknown option for dropout; expected p"),
    ("- sigmoid", "- sigmoidd", "model.layers[1]: unknown layer type 'sigmoidd' (did you mean 'sigmoid'?)"),
    ("- sigmoid", "- sigmoid: 3", "model.layers[1].sigmoid: takes no value, got 3"),
    ("- linear: 32", "- linear: 0", "model.layers[0].linear: must be >= 1, got 0"),
    ("- linear: 32", "- linear", "model.layers[0].linear: needs its output width"),
    ("- linear: 32", "- linear: 1000000000", "model.layers[0].linear: must be <= 65,536, got 1000000000"),
    ("- linear: 10", "- linear: 7", "model.layers[3].linear: the last layer has 7 outputs but dataset digits has 10 classes"),
    ("- linear: 10", "- sigmoid", "model.layers[3]: the last layer must be linear"),
    ("  lr: 0.1", "  lr: 0.1\n  lrr: 0.2", "train.lrr: unknown key (did you mean 'lr'?); expected one of epochs, batch_size, lr, momentum"),
    ("seed: 0", "seed: 0\nextra: 1", "extra: unknown key; expected one of model, seed, data, train"),
    ("dataset: digits", "dataset: mnsit", "data.dataset: unknown dataset 'mnsit'"),
    ("model:", "model:\n  head: mse", "model.head: must be one of softmax_ce, got 'mse' (a string)"),
    ("model:", "model:\n  init: glorot", "model.init: must be one of xavier, he, lecun, normal, got 'glorot'"),
    ("model:", "model:\n  dtype: float16", "model.dtype: must be one of float32, float64"),
    ("train:\n", "train:\n  momentum: 1.0\n", "train.momentum: must be in [0, 1), got 1.0"),
    ("seed: 0", "seed: -1", "seed: must be >= 0, got -1"),
    ("dataset: digits", "dataset: [a]", "data.dataset: must be a string, got a list"),
]


@pytest.mark.parametrize("old,new,msg", BAD, ids=[b[2][:40] for b in BAD])
def test_bad_values_name_file_and_key(write_config, old, new, msg):
    assert old in BASE
    path = write_config(BASE.replace(old, new, 1))
    with pytest.raises(ConfigError) as e:
        load_config(path)
    text = str(e.value)
    assert text.startswith(f"{path}: "), text
    assert msg in text, text
    assert "\n" not in text


def test_empty_layer_list(write_config):
    text = "model:\n  layers: []\n"
    with pytest.raises(ConfigError, match=r"cfg.yaml: model.layers: must not be empty"):
        load_config(write_config(text))


def test_missing_model_section(write_config):
    with pytest.raises(ConfigError, match=r"cfg.yaml: model: is required but missing"):
        load_config(write_config("seed: 1\n"))


@pytest.mark.parametrize(
    "text,msg",
    [
        ("", "the config is empty"),
        ("- 1\n- 2\n", "the config must be a mapping of sections (model:, data:, train:), got a list"),
        ("model: [1, 2\n", "not valid YAML at line 2"),
        ("model: 3\n", "model: must be a mapping of keys to values, got 3"),
        ("model:\n  layers: 3\n", "model.layers: must be a list of layers, got 3"),
    ],
)
def test_malformed_documents(write_config, text, msg):
    with pytest.raises(ConfigError, match=None) as e:
        load_config(write_config(text))
    assert msg in str(e.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"is a folder, not a config file"):
        load_config(tmp_path)


def test_not_utf8(tmp_path):
    p = tmp_path / "latin.yaml"
    p.write_bytes(b"seed: 0\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin.yaml: is not UTF-8 text"):
        load_config(p)


# --------------------------------------------------------------------------- --set


def test_overrides_change_values_with_types(write_config):
    path = write_config(BASE)
    cfg = load_config(path, ["train.lr=0.05", "model.layers[2].dropout=0.3", "train.momentum=0.9",
                             "model.layers[0].linear=64", "data.validation=100"])
    assert cfg.train.lr == 0.05 and cfg.model.layers[2].p == 0.3 and cfg.train.momentum == 0.9
    assert cfg.model.layers[0].out_features == 64 and cfg.data.validation == 100


def test_override_can_replace_a_layer(write_config):
    cfg = load_config(write_config(BASE), ["model.layers[1]=relu"])
    assert cfg.model.layers[1].type == "relu"


@pytest.mark.parametrize(
    "item,msg",
    [
        ("train.lr=abc", "train.lr (set by --set): must be a number, got 'abc' (a string)"),
        ("train.epochs=2.5", "train.epochs (set by --set): must be an integer, got 2.5"),
        ("train.lrr=1", "train.lrr (set by --set): unknown key"),
        ("model.layers[2].dropout=1", "model.layers[2].dropout (set by --set): must be in [0, 1), got 1"),
        ("model.layers[9].linear=3", "--set model.layers[9].linear: model.layers[9] does not exist"),
        ("train.lr", "--set train.lr: expected key.path=value"),
        ("train..lr=1", "--set train..lr: not a key path"),
        ("model.layers[1].p=0.2", "--set model.layers[1].p: model.layers[1] has no option p"),
    ],
)
def test_bad_overrides(write_config, item, msg):
    with pytest.raises(ConfigError) as e:
        load_config(write_config(BASE), [item])
    assert msg in str(e.value)


def test_parse_yaml_error_is_one_line():
    with pytest.raises(ConfigError) as e:
        parse_yaml("a: [1,\n  b: }", "x.yaml")
    assert "\n" not in str(e.value) and str(e.value).startswith("x.yaml: not valid YAML")


def test_config_from_dict_accepts_plain_data():
    cfg = config_from_dict({"model": {"layers": ["sigmoid", {"linear": 10}]}})
    assert cfg.model.layers[1].out_features == 10
