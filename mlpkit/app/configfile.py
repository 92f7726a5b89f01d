"""Config files: YAML in (a safe loader with YAML 1.2's floats and booleans), ``--set`` overrides, YAML out.

YAML is read with a :class:`yaml.SafeLoader` subclass whose only changes are
YAML 1.2's rules for floats and booleans: ``lr: 1e-3`` is the number users
mean rather than the string YAML 1.1 makes of it, and only ``true``/``false``
are booleans (not ``yes``, ``no``, ``on``, ``off``). Duplicate keys are errors.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from mlpkit.config.schema import Config, TrainConfig
from mlpkit.config.validate import _check_value, _Ctx, _field_types, _kind, _short, config_from_dict
from mlpkit.errors import ConfigError, DataError
from mlpkit.reader import NotARegularFile, read_text

MAX_CONFIG_BYTES = 1_000_000


# --------------------------------------------------------------------------- YAML


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats (``1e-3``) and booleans (only true/false)."""


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


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


class _DuplicateKey(Exception):
    pass


MAX_YAML_VALUES = 100_000  # values in a document once its aliases are expanded; a config has a few hundred


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values ``node`` stands for with every alias expanded, counted once per node (linear time)."""
    key = id(node)
    if key not in memo:
        memo[key] = 1  # a node that refers to itself counts once
        if isinstance(node, yaml.SequenceNode):
            memo[key] = 1 + sum(_expanded_size(c, memo) for c in node.value)
        elif isinstance(node, yaml.MappingNode):
            memo[key] = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    return memo[key]


def _load(text: str, source: str) -> Any:
    """yaml.load, with the document's size once its aliases are expanded bounded before anything is built:
    a "billion laughs" document is a few hundred bytes that every reader after the parser would walk for ever."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_YAML_VALUES:
            raise ConfigError(f"{source}: its aliases expand to more than {MAX_YAML_VALUES:,} values; a config "
                              "needs no more than a few hundred")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML text safely; any failure of the parser or of a tag's constructor (an invalid
    date, an integer too long to convert, ``!!float ''``...) becomes a one-line ConfigError."""
    try:
        return _load(text, source)
    except ConfigError:
        raise
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
    """The file's text: a regular file (not a folder, FIFO or device), read with a bound (``mlpkit.reader``)."""
    p = Path(path)
    try:
        return read_text(p, MAX_CONFIG_BYTES)
    except NotARegularFile as e:
        if e.kind == "a folder":
            raise ConfigError(f"{p}: is a folder, not a config file") from None
        raise ConfigError(f"{p}: is not a regular file ({e.kind[2:] if e.kind.startswith('a ') else e.kind}); "
                          "give a YAML config file") from None
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except PermissionError:
        raise ConfigError(f"{p}: config file cannot be read (permission denied)") from None
    except OSError as e:
        raise ConfigError(f"{p}: config file cannot be read ({e.strerror or e})") from None
    except DataError as e:  # too large, or not UTF-8: the reader's sentence names the file and the bound
        raise ConfigError(str(e)) from None


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
                              "only train.epochs may change (to change more, start a new run from its weights: "
                              "mlpkit train CONFIG --init-from RUN)")
        epochs = _check_value(ftype, optional, meta, data["train"]["epochs"], path, _Ctx("--set", {path}))
    return epochs


def config_to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=False, allow_unicode=True)
