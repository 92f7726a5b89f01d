"""Config validation: a plain dict in, frozen dataclasses (``schema``) out.

Everything is checked before any work starts. A problem is reported as one
sentence naming the source (file or ``--set``), the key path (for example
``model.layers[2].dropout``) and the bad value, as a :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, fields
from functools import cache
from typing import Any

from mlpkit.config.schema import _LAYER_OPTIONS, _MAIN_OPTION, LAYER_TYPES, MAX_LAYERS, Config, LayerSpec
from mlpkit.errors import ConfigError


def _short(text: Any, limit: int = 40) -> str:
    s = str(text)
    return s if len(s) <= limit else s[: limit - 3] + "..."


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


def _check_value(ftype: type, optional: bool, meta: Mapping[str, Any], v: Any, path: str, ctx: _Ctx) -> Any:
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
        raise ctx.fail(path, f"must be one of {', '.join(meta['choices'])}, got {_describe(v)}"
                             f"{did_you_mean(v, meta['choices'])}")
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


def did_you_mean(word: Any, choices: Iterable[str]) -> str:
    """' (did you mean 'lr'?)' for the closest choice (difflib), or '' when none is close."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)  # 0.6 offers "train" for "extra"
    return f" (did you mean {close[0]!r}?)" if close else ""


def _section(cls: type, d: Any, path: str, ctx: _Ctx) -> Any:
    """Build dataclass ``cls`` from mapping ``d``, checking every key and value."""
    d = _mapping(d, path, ctx)
    known = {f.name: f for f in fields(cls)}
    for k in d:
        if k not in known:
            raise ctx.fail(_join(path, k), f"unknown key{did_you_mean(k, known)}; expected one of {', '.join(known)}")
    kwargs: dict[str, Any] = {}
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
        elif isinstance(ftype, type) and dataclasses.is_dataclass(ftype):
            kwargs[name] = None if v is None and optional else _section(ftype, v, sub, ctx)
        else:
            kwargs[name] = _check_value(ftype, optional, f.metadata, v, sub, ctx)
    return cls(**kwargs)


_LAYER_META = {f.name: f for f in fields(LayerSpec)}


def _layer(v: Any, path: str, ctx: _Ctx) -> LayerSpec:
    opts: Any
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
        what = repr(_short(kind)) if isinstance(kind, str) else _describe(kind)
        raise ctx.fail(path, f"unknown layer type {what}{did_you_mean(kind, LAYER_TYPES)}; expected one "
                             f"of {', '.join(LAYER_TYPES)}")
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
        values = dict(opts)  # the long form: a mapping, checked by the caller
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
    from mlpkit.data.registry import REGISTRY, is_path_dataset

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
