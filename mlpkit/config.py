"""The run config: YAML in, validated frozen dataclasses out.

Everything is checked before any work starts. A problem is reported as one
sentence naming the source (file or ``--set``), the key path (for example
``model.layers[2].dropout``) and the bad value, as a :class:`ConfigError`.

YAML is read with a :class:`yaml.SafeLoader` subclass whose only changes are
YAML 1.2's rules for floats and booleans: ``lr: 1e-3`` is the number users
mean rather than the string YAML 1.1 makes of it, and only ``true``/``false``
are booleans (not ``yes``, ``no``, ``on``, ``off``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import stat
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .init import BIAS_INITS, WEIGHT_INITS

# Limits that keep a typo from allocating the machine away.
MAX_WIDTH = 65_536  # units in one Linear layer
MAX_LAYERS = 256
MAX_PARAMS = 200_000_000  # 800 MB of float32 weights
MAX_EPOCHS = 100_000
MAX_BATCH = 1_000_000
MAX_CONFIG_BYTES = 1_000_000

LAYER_TYPES = ("linear", "sigmoid", "relu", "tanh", "dropout")
DTYPES = ("float32", "float64")
HEADS = ("softmax_ce",)
LR_SCHEDULES = ("constant", "step", "exponential", "cosine")


def _f(default: Any = MISSING, *, help: str, **check: Any) -> Any:
    """A dataclass field whose metadata carries its help text and checks."""
    meta = {"help": help, **check}
    if isinstance(default, (list, dict)):
        raise TypeError("use a tuple default")
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class LayerSpec:
    """One entry of ``model.layers``. Options left as None take the model's defaults."""

    type: str = _f(help="linear | sigmoid | relu | tanh | dropout", choices=LAYER_TYPES)
    out_features: int | None = _f(None, help="linear: output width", min=1, max=MAX_WIDTH)
    p: float | None = _f(None, help="dropout: probability of dropping a unit, in [0, 1)", min=0.0, max_excl=1.0)
    init: str | None = _f(None, help="linear: weight init (overrides model.init)", choices=WEIGHT_INITS)
    init_std: float | None = _f(None, help="linear: std for init 'normal'", min_excl=0.0)
    bias_init: str | None = _f(None, help="linear: bias init (overrides model.bias_init)", choices=BIAS_INITS)
    bias_std: float | None = _f(None, help="linear: std for bias_init 'normal'", min_excl=0.0)
    max_norm: float | None = _f(None, help="linear: cap on each unit's incoming weight norm", min_excl=0.0)


# The option each layer type takes in the short form, and the options it allows.
_MAIN_OPTION = {"linear": "out_features", "dropout": "p"}
_LAYER_OPTIONS = {
    "linear": ("out_features", "init", "init_std", "bias_init", "bias_std", "max_norm"),
    "dropout": ("p",),
    "sigmoid": (),
    "relu": (),
    "tanh": (),
}


@dataclass(frozen=True)
class ElasticConfig:
    alpha: float = _f(help="elastic: the displacement's scale in pixels (Simard et al. 2003: 34 for MNIST)", min=0.0,
                      max=100.0)
    sigma: float = _f(help="elastic: the smoothing Gaussian's standard deviation in pixels (Simard: 4)",
                      min_excl=0.0, max=20.0)
    p: float = _f(1.0, help="elastic: the probability that an image is distorted", min=0.0, max=1.0)


@dataclass(frozen=True)
class AffineConfig:
    rotate: float = _f(0.0, help="affine: the largest rotation, in degrees either way", min=0.0, max=180.0)
    scale: float = _f(0.0, help="affine: the largest zoom, as a fraction (0.1: 0.9 to 1.1)", min=0.0, max=0.9)
    shear: float = _f(0.0, help="affine: the largest shear, in degrees either way", min=0.0, max=60.0)
    translate: float = _f(0.0, help="affine: the largest shift, as a fraction of the image's side", min=0.0,
                          max=0.5)
    p: float = _f(1.0, help="affine: the probability that an image is transformed", min=0.0, max=1.0)


@dataclass(frozen=True)
class AugmentConfig:
    elastic: ElasticConfig | None = _f(None, help="elastic distortions; null: none")
    affine: AffineConfig | None = _f(None, help="random affine maps; null: none")


@dataclass(frozen=True)
class DataConfig:
    dataset: str = _f("digits", help="digits | mnist | path/to/file.npz")
    data_dir: str | None = _f(None, help="folder holding the dataset's IDX files")
    validation: int = _f(0, help="examples held out of the end of the training split", min=0, max=10_000_000)
    train_eval_samples: int = _f(
        10_000, help="training examples scored in inference mode each epoch", min=0, max=10_000_000
    )
    normalize: bool = _f(False, help="standardize inputs with the training split's pixel mean and std")
    image_size: int = _f(28, help="an image folder: the side its images are prepared to", min=4, max=256)
    prepare: bool = _f(True, help="an image folder: prepare each image as MNIST's were (false: use them as they are; "
                       "they must then share one size)")
    test_fraction: float = _f(0.2, help="an image folder without train/ and test/, or a CSV: the share of each class "
                              "held out as the test split", min_excl=0.0, max_excl=1.0)
    label_column: str = _f("label", help="a CSV with a header: the column holding the labels")
    augment: AugmentConfig | None = _f(None, help="transforms applied to each training image, freshly every epoch "
                                       "(never at evaluation); null: none")


@dataclass(frozen=True)
class ModelConfig:
    layers: tuple[LayerSpec, ...] = _f(help="the stack, input to logits")
    init: str = _f("xavier", help="weight init of Linear layers", choices=WEIGHT_INITS)
    init_std: float = _f(1.0, help="std for init 'normal'", min_excl=0.0)
    bias_init: str = _f("zeros", help="bias init of Linear layers", choices=BIAS_INITS)
    bias_std: float = _f(1.0, help="std for bias_init 'normal'", min_excl=0.0)
    max_norm: float | None = _f(
        None, help="cap on the L2 norm of each unit's incoming weights, applied after every step (Srivastava "
        "et al. 2014); null: none", min_excl=0.0
    )
    head: str = _f("softmax_ce", help="the loss head", choices=HEADS)
    dtype: str = _f("float32", help="float32 (training) or float64", choices=DTYPES)


@dataclass(frozen=True)
class EarlyStoppingConfig:
    patience: int = _f(help="epochs without improvement of the validation accuracy before training stops", min=1,
                       max=MAX_EPOCHS)
    min_delta: float = _f(0.0, help="the least rise of the validation accuracy (a fraction, 0.001 = 0.1 point) "
                          "that counts as an improvement", min=0.0, max_excl=1.0)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = _f(10, help="passes over the training split", min=1, max=MAX_EPOCHS)
    batch_size: int = _f(64, help="examples per SGD step", min=1, max=MAX_BATCH)
    lr: float = _f(0.1, help="learning rate", min_excl=0.0, max=1e6)
    momentum: float = _f(0.0, help="SGD momentum, in [0, 1)", min=0.0, max_excl=1.0)
    weight_decay: float = _f(0.0, help="L2 penalty coefficient (PyTorch SGD convention)", min=0.0, max=1e6)
    l2: float = _f(
        0.0, help="Nielsen's L2 λ: the cost gains (λ/2n)·Σw², i.e. weight_decay = λ / n_train", min=0.0, max=1e9
    )
    lr_schedule: str = _f("constant", help="constant | step | exponential | cosine", choices=LR_SCHEDULES)
    lr_decay: float = _f(1.0, help="step/exponential: factor applied every lr_step epochs", min_excl=0.0, max=1.0)
    lr_step: int = _f(1, help="step: epochs between decays", min=1, max=MAX_EPOCHS)
    lr_min: float = _f(0.0, help="cosine: the final learning rate", min=0.0)
    momentum_start: float | None = _f(
        None, help="momentum of the first epoch, ramped linearly to train.momentum; null: no ramp",
        min=0.0, max_excl=1.0
    )
    momentum_ramp_epochs: int = _f(0, help="epochs the momentum ramp lasts", min=0, max=MAX_EPOCHS)
    grad_norm_samples: int = _f(
        50, help="steps per epoch whose gradient norms are measured (0: every step)", min=0, max=10_000_000
    )
    early_stopping: EarlyStoppingConfig | None = _f(
        None, help="stop when the validation accuracy has not improved for `patience` epochs; the final weights are "
        "the best epoch's (needs data.validation); null: train every epoch"
    )


@dataclass(frozen=True)
class Config:
    model: ModelConfig = _f(help="the network")
    seed: int = _f(0, help="seeds init, shuffling and dropout", min=0, max=2**63 - 1)
    data: DataConfig = _f(DataConfig(), help="the dataset")
    train: TrainConfig = _f(TrainConfig(), help="the optimizer and schedule")

    def to_dict(self) -> dict[str, Any]:
        """Plain data that ``config_from_dict`` turns back into an equal Config."""
        d = asdict(self)
        d["model"]["layers"] = [layer_to_dict(s) for s in self.model.layers]
        return d


def layer_to_dict(spec: LayerSpec) -> Any:
    """The shortest YAML form of a layer spec."""
    opts = {k: getattr(spec, k) for k in _LAYER_OPTIONS[spec.type] if getattr(spec, k) is not None}
    main = _MAIN_OPTION.get(spec.type)
    if not opts:
        return spec.type
    if list(opts) == [main]:
        return {spec.type: opts[main]}
    return {spec.type: opts}


# --------------------------------------------------------------------------- YAML


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats (``1e-3``) and booleans (only true/false)."""


_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_FLOAT_12 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))
# YAML 1.2 booleans too: only true/false, so `yes`, `no`, `on`, `off` stay the strings they look like.
for _first, _resolvers in _Loader.yaml_implicit_resolvers.items():
    _resolvers[:] = [(tag, rx) for tag, rx in _resolvers if tag != "tag:yaml.org,2002:bool"]
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    """A mapping, refusing a key given twice (YAML says keys are unique; PyYAML keeps the last)."""
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKey(f"key {_short(key)!r} is given twice, at lines {seen[key]} and {line}")
            seen[key] = line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


class _DuplicateKey(Exception):
    pass


_Loader.add_constructor("tag:yaml.org,2002:map", lambda loader, node: _construct_mapping(loader, node))


def _short(text: Any, limit: int = 40) -> str:
    s = str(text)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text safely; any failure of the parser or of a tag's constructor (an invalid
    date, an integer too long to convert, ``!!float ''``...) becomes a one-line ConfigError."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as e:
        raise ConfigError(f"{source}: {e}") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{source}: not valid YAML{where}: {_short(e.problem, 80)}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {_short(str(e).splitlines()[0], 80)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: the YAML is nested too deeply") from None
    except (ValueError, TypeError, OverflowError, ArithmeticError, KeyError, IndexError, AttributeError) as e:
        # a tag's constructor failed on its value: !!int abc, a date like 2020-13-45, 4,301 digits...
        raise ConfigError(f"{source}: a value cannot be read as YAML ({type(e).__name__}: "
                          f"{_short(str(e).splitlines()[0] if str(e) else '', 60)})") from None


def read_config_text(path: str | Path) -> str:
    """The file's text: a regular file (not a folder, FIFO or device), read with a bound."""
    p = Path(path)
    try:
        if p.is_dir():
            raise ConfigError(f"{p}: is a folder, not a config file")
        if not stat.S_ISREG(p.stat().st_mode):
            raise ConfigError(f"{p}: is not a regular file (a device, pipe or socket); give a YAML file")
        with open(p, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{p}: is larger than {MAX_CONFIG_BYTES:,} bytes, the most a config may be")
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except PermissionError:
        raise ConfigError(f"{p}: config file cannot be read (permission denied)") from None
    except OSError as e:
        raise ConfigError(f"{p}: config file cannot be read ({e.strerror or e})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: is not UTF-8 text (byte {e.start})") from None


# --------------------------------------------------------------------------- validation


class _Ctx:
    """Where values came from, for error messages."""

    def __init__(self, source: str, overridden: set[str] | None = None) -> None:
        self.source = source
        self.overridden = overridden or set()

    def fail(self, path: str, msg: str) -> ConfigError:
        if path in self.overridden:
            return ConfigError(f"{self.source}: {path} (set by --set): {msg}")
        return ConfigError(f"{self.source}: {path}: {msg}" if path else f"{self.source}: {msg}")


def _kind(v: Any) -> str:
    """What a value is, without showing it."""
    names = {str: "a string", list: "a list", int: "a number", float: "a number", bool: "a boolean"}
    return names.get(type(v), f"a {type(v).__name__}")


def _describe(v: Any) -> str:
    """A value for an error message: short, and never more than 40 characters of it."""
    if isinstance(v, str):
        return f"{_short(v)!r} (a string)"
    if isinstance(v, bool):
        return f"{v} (a boolean)"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, list):
        return "a list"
    if v is None:
        return "nothing (null)"
    if isinstance(v, int) and abs(v) >= 10**30:  # never str() it: 4,301+ digits raise ValueError
        digits = int(abs(v).bit_length() * 0.30103) + 1
        return f"an integer of {digits:,} digits" if digits < 4300 else f"an integer of about {digits:,} digits"
    if isinstance(v, bytes):
        return f"binary data ({len(v):,} bytes)"
    return f"{_short(repr(v))} (a {type(v).__name__})" if not isinstance(v, (int, float)) else _short(repr(v))


@cache
def _field_types(cls: type) -> dict[str, tuple[Any, bool]]:
    """Each field's type from the class's real type hints: (the type without None, whether None is allowed)."""
    out = {}
    for name, hint in typing.get_type_hints(cls).items():
        args = typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType):
            out[name] = (next(a for a in args if a is not type(None)), type(None) in args)
        else:
            out[name] = (hint, False)
    return out


def _check_value(ftype: type, optional: bool, meta: dict, v: Any, path: str, ctx: _Ctx) -> Any:
    """Type- and range-check one scalar of type ``ftype``; returns the value (ints widened to float)."""
    if v is None:
        if optional:
            return None
        raise ctx.fail(path, "a value is required, got nothing (null)")
    if ftype is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ctx.fail(path, f"must be an integer, got {_describe(v)}")
    elif ftype is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ctx.fail(path, f"must be a number, got {_describe(v)}")
        if isinstance(v, int) and abs(v) > 1e300:
            raise ctx.fail(path, f"is out of range, got {_describe(v)}")
        v = float(v)
        if not math.isfinite(v):
            raise ctx.fail(path, f"must be a finite number, got {v}")
    elif ftype is bool:
        if not isinstance(v, bool):
            raise ctx.fail(path, f"must be true or false, got {_describe(v)}")
    elif ftype is str:
        if not isinstance(v, str):
            raise ctx.fail(path, f"must be a string, got {_describe(v)}")
        if not v.strip():
            raise ctx.fail(path, "must not be empty")
        if "\x00" in v or len(v) > 4096:
            raise ctx.fail(path, "must be a plain string of at most 4,096 characters")
    if "choices" in meta and v not in meta["choices"]:
        raise ctx.fail(path, f"must be one of {', '.join(meta['choices'])}, got {_describe(v)}")
    if "min" in meta and v < meta["min"]:
        raise ctx.fail(path, f"must be >= {meta['min']:g}, got {_describe(v)}")
    if "max" in meta and v > meta["max"]:
        raise ctx.fail(path, f"must be <= {meta['max']:,}, got {_describe(v)}")
    if "min_excl" in meta and v <= meta["min_excl"]:
        raise ctx.fail(path, f"must be > {meta['min_excl']:g}, got {_describe(v)}")
    if "max_excl" in meta and v >= meta["max_excl"]:
        lo = meta.get("min", meta.get("min_excl"))
        rng = f"in [{lo:g}, {meta['max_excl']:g})" if lo is not None else f"< {meta['max_excl']:g}"
        raise ctx.fail(path, f"must be {rng}, got {_describe(v)}")
    return v


def _mapping(d: Any, path: str, ctx: _Ctx) -> dict:
    if not isinstance(d, dict):
        raise ctx.fail(path, f"must be a mapping of keys to values, got {_describe(d)}")
    for k in d:
        if not isinstance(k, str):
            raise ctx.fail(path, f"keys must be strings, got {_describe(k)}")
    return d


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


def _join(path: str, key: str) -> str:
    """``path.key``, or ``path['odd key']`` for a key that is not a plain name. A long odd key
    is not shown: it is more likely a line of some other file than a config key."""
    if not _PLAIN_KEY.match(key):
        if len(key) > 20 or not key.isprintable():
            return f"{path}[a {len(key):,}-character key that is not a name]"
        return f"{path}[{key!r}]"
    return f"{path}.{key}" if path else key


def _section(cls: type, d: Any, path: str, ctx: _Ctx) -> Any:
    """Build dataclass ``cls`` from mapping ``d``, checking every key and value."""
    d = _mapping(d, path, ctx)
    known = {f.name: f for f in fields(cls)}
    for k in d:
        if k not in known:
            raise ctx.fail(_join(path, k), f"unknown key; expected one of {', '.join(known)}")
    kwargs = {}
    types_ = _field_types(cls)
    for name, f in known.items():
        sub = _join(path, name)
        if name not in d:
            if f.default is MISSING:
                raise ctx.fail(sub, "is required but missing")
            continue
        v = d[name]
        ftype, optional = types_[name]
        if typing.get_origin(ftype) is tuple and typing.get_args(ftype)[0] is LayerSpec:
            kwargs[name] = _layers(v, sub, ctx)
        elif dataclasses.is_dataclass(ftype):
            kwargs[name] = None if v is None and optional else _section(ftype, v, sub, ctx)
        else:
            kwargs[name] = _check_value(ftype, optional, f.metadata, v, sub, ctx)
    return cls(**kwargs)


_LAYER_META = {f.name: f for f in fields(LayerSpec)}


def _layer(v: Any, path: str, ctx: _Ctx) -> LayerSpec:
    if isinstance(v, str):
        kind, opts, short = v, None, True
    elif isinstance(v, dict) and len(v) == 1:
        ((kind, opts),) = v.items()
        short = not isinstance(opts, dict)
    else:
        raise ctx.fail(
            path,
            f"a layer is a name (- sigmoid) or a one-key mapping (- linear: 100), got {_describe(v)}",
        )
    if not isinstance(kind, str) or kind not in LAYER_TYPES:
        raise ctx.fail(path, f"unknown layer type {_describe(kind)}; expected one of {', '.join(LAYER_TYPES)}")
    lpath = f"{path}.{kind}"
    main = _MAIN_OPTION.get(kind)
    if short:
        if opts is None:
            values = {}
        elif main is None:
            raise ctx.fail(lpath, f"takes no value, got {_describe(opts)}")
        else:
            values = {main: opts}
            paths = {main: lpath}
    else:
        values = opts
        paths = {k: _join(lpath, k) if isinstance(k, str) else f"{lpath}[{k!r}]" for k in opts}
        for k in opts:
            if not isinstance(k, str) or k not in _LAYER_OPTIONS[kind]:
                allowed = ", ".join(_LAYER_OPTIONS[kind]) or "no options"
                raise ctx.fail(_join(lpath, k) if isinstance(k, str) else f"{lpath}[{k!r}]", f"unknown option for {kind}; expected {allowed}")
    checked = {}
    types_ = _field_types(LayerSpec)
    for k, val in values.items():
        checked[k] = _check_value(*types_[k], _LAYER_META[k].metadata, val, paths[k], ctx)
    if kind == "linear" and checked.get("out_features") is None:
        raise ctx.fail(lpath, "needs its output width, e.g. '- linear: 100'")
    if kind == "dropout" and checked.get("p") is None:
        checked["p"] = 0.5  # PyTorch's default
    return LayerSpec(type=kind, **checked)


def _layers(v: Any, path: str, ctx: _Ctx) -> tuple[LayerSpec, ...]:
    if not isinstance(v, list):
        raise ctx.fail(path, f"must be a list of layers, got {_describe(v)}")
    if not v:
        raise ctx.fail(path, "must not be empty; list at least one '- linear: <classes>'")
    if len(v) > MAX_LAYERS:
        raise ctx.fail(path, f"has {len(v)} layers; at most {MAX_LAYERS} are supported")
    specs = tuple(_layer(item, f"{path}[{i}]", ctx) for i, item in enumerate(v))
    if specs[-1].type != "linear":
        raise ctx.fail(f"{path}[{len(v) - 1}]", f"the last layer must be linear (it makes the logits), got {specs[-1].type}")
    return specs


def config_from_dict(d: Any, source: str = "<config>", overridden: set[str] | None = None) -> Config:
    """Validate plain data (as loaded from YAML) into a :class:`Config`."""
    ctx = _Ctx(source, overridden)
    if d is None:
        raise ConfigError(f"{source}: the config is empty; it needs at least a 'model' section")
    if not isinstance(d, dict):  # never echo the text: the file may not be a config at all
        raise ConfigError(f"{source}: the config must be a mapping of sections (model:, data:, train:), got "
                          f"{_kind(d)}")
    cfg = _section(Config, d, "", ctx)
    _cross_check(cfg, ctx)
    return cfg


def _cross_check(cfg: Config, ctx: _Ctx) -> None:
    """Checks that involve more than one key."""
    from .data import REGISTRY, is_path_dataset

    name = cfg.data.dataset
    if name not in REGISTRY and not is_path_dataset(name):
        raise ctx.fail("data.dataset", f"unknown dataset {_short(name)!r}; expected one of {', '.join(REGISTRY)}, or "
                       "a path to an .npz file, a CSV file or an image folder")
    if cfg.train.l2 and cfg.train.weight_decay:
        raise ctx.fail("train.l2", "set train.l2 (Nielsen's λ) or train.weight_decay, not both")
    if cfg.train.early_stopping is not None and cfg.data.validation == 0:
        raise ctx.fail("train.early_stopping", "watches the validation accuracy, but there is no validation split; "
                       "set data.validation (e.g. 5000)")
    if cfg.train.lr_min >= cfg.train.lr:
        raise ctx.fail("train.lr_min", f"must be below train.lr ({cfg.train.lr:g}), got {cfg.train.lr_min:g}")
    info = REGISTRY.get(name)
    last = len(cfg.model.layers) - 1
    width = cfg.model.layers[last].out_features
    if info is not None and width != info.num_classes:
        raise ctx.fail(
            f"model.layers[{last}].linear",
            f"the last layer has {width} outputs but dataset {name} has {info.num_classes} classes",
        )


# --------------------------------------------------------------------------- overrides

_TOKEN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def _parse_key_path(key: str) -> list[str | int]:
    parts: list[str | int] = []
    for seg in key.split("."):
        m_all = list(_TOKEN.finditer(seg))
        if not seg or "".join(m.group(0) for m in m_all) != seg or m_all[0].group(1) is None:
            raise ConfigError(f"--set {key}: not a key path like train.lr or model.layers[2].dropout")
        for m in m_all:
            parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
    return parts


def path_str(parts: list[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def apply_override(d: dict, item: str) -> str:
    """Apply one ``key.path=value`` to raw config data in place; returns the path."""
    if "=" not in item:
        raise ConfigError(f"--set {item}: expected key.path=value, e.g. --set train.lr=0.05")
    key, _, text = item.partition("=")
    parts = _parse_key_path(key.strip())
    value = parse_yaml(text, f"--set {key}") if text.strip() else None
    node: Any = d
    for i, p in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(p, int):
            if not isinstance(node, list) or p >= len(node):
                raise ConfigError(f"--set {key}: {path_str(parts[: i + 1])} does not exist")
            node = node[p]
        else:
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {path_str(parts[:i])} is not a mapping")
            if p not in node or node[p] is None:
                node[p] = [] if isinstance(nxt, int) else {}
            node = node[p]
        # A short-form layer ('- dropout: 0.5' or '- sigmoid') addressed by an option.
        if isinstance(nxt, str) and isinstance(node, str):
            raise ConfigError(f"--set {key}: {path_str(parts[: i + 1])} has no option {nxt}")
    last = parts[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise ConfigError(f"--set {key}: {path_str(parts)} does not exist")
        node[last] = value
    else:
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {path_str(parts[:-1])} is not a mapping")
        node[last] = value
    return path_str(parts)


# --------------------------------------------------------------------------- entry points


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read, override and validate a YAML config file.

    Raises:
        ConfigError: one sentence naming the file or ``--set`` item, the key path and the value.
    """
    source = str(path)
    data = parse_yaml(read_config_text(path), source)
    if overrides and data is not None and not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a mapping of sections (model:, data:, train:), got "
                          f"{_kind(data)}")
    overridden: set[str] = set()
    for item in overrides:
        if data is None:
            data = {}
        overridden.add(apply_override(data, item))
    return config_from_dict(data, source, overridden)


def resume_epochs(overrides: list[str] | tuple[str, ...]) -> int | None:
    """The new ``train.epochs`` of a resumed run, from its ``--set`` items (None: unchanged).

    A resumed run keeps its config: any other key is an error.
    """
    epochs = None
    ftype, optional = _field_types(TrainConfig)["epochs"]
    meta = {f.name: f for f in fields(TrainConfig)}["epochs"].metadata
    for item in overrides:
        data: dict = {}
        path = apply_override(data, item)
        if path != "train.epochs":
            raise ConfigError(f"--set {item.partition('=')[0].strip()[:60]}: a resumed run keeps its config; "
                              "only train.epochs may change")
        epochs = _check_value(ftype, optional, meta, data["train"]["epochs"], path, _Ctx("--set", {path}))
    return epochs


def config_to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None)


def with_train(cfg: Config, **changes: Any) -> Config:
    """A copy of ``cfg`` with some ``train`` fields replaced (for tests and tools)."""
    return replace(cfg, train=replace(cfg.train, **changes))
