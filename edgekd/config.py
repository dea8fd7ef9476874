"""Typed configuration: dataclasses with defaults, overridden by TOML files and `key=value` flags.

Nested dataclasses map to TOML tables (`[optim]`) and to dotted keys (`optim.lr=3e-4`).
An unknown key fails with "did you mean", a value of the wrong type fails naming the key.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from edgekd.errors import ConfigError
from edgekd.registry import did_you_mean

C = TypeVar("C")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    """Check `value` against annotation `tp`; ints widen to floats, strings parse from flags."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key, where)
            except ConfigError as e:
                errors.append(e)
        raise errors[0]
    if origin in (list, tuple):
        (item,) = typing.get_args(tp)[:1] or (Any,)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: {key} must be a list, got {value!r}")
        return [_coerce(v, item, key, where) for v in value]
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        if isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(value, tp):
        return value
    name = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"{where}: {key} must be {name}, got {value!r}", f"fix the value of {key}")


def merge(obj: C, values: dict[str, Any], where: str = "config", prefix: str = "") -> C:
    """Return a copy of dataclass `obj` with nested `values` applied, strictly."""
    types_ = _field_types(type(obj))
    changes: dict[str, Any] = {}
    for key, value in values.items():
        full = prefix + key
        if key not in types_:
            raise ConfigError(f"{where}: unknown key {full!r}", did_you_mean(key, list(types_)))
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {full} is a table, got {value!r}")
            changes[key] = merge(current, value, where, full + ".")
        else:
            changes[key] = _coerce(value, types_[key], full, where)
    return dataclasses.replace(obj, **changes)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["optim.lr=1e-3", "epochs=3"]` -> `{"optim": {"lr": "1e-3"}, "epochs": "3"}`."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"override {pair!r} is not key=value", "write e.g. optim.lr=3e-4")
        key, value = pair.split("=", 1)
        node = out
        *parents, leaf = key.strip().split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value.strip()
    return out


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist", "check the path passed to --config")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}", "fix the syntax at the line named") from e


def resolve(default: C, toml_path: str | Path | None = None, overrides: list[str] | None = None) -> C:
    """Defaults <- TOML file <- `key=value` overrides."""
    cfg = default
    if toml_path is not None:
        cfg = merge(cfg, load_toml(toml_path), where=str(toml_path))
    if overrides:
        cfg = merge(cfg, parse_overrides(overrides), where="--set")
    return cfg


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as plain nested dicts, `None` fields dropped (TOML has no null)."""

    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if x is not None}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return clean(dataclasses.asdict(obj))


def dumps_toml(data: dict[str, Any]) -> str:
    """A minimal TOML writer for config dicts (scalars, lists of scalars, nested tables)."""

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        s = str(v).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{s}"'

    lines: list[str] = []

    def table(d: dict[str, Any], name: str) -> None:
        plain = {k: v for k, v in d.items() if not isinstance(v, dict)}
        nested = {k: v for k, v in d.items() if isinstance(v, dict)}
        if name and plain:
            lines.append(f"\n[{name}]")
        lines.extend(f"{k} = {scalar(v)}" for k, v in plain.items())
        for k, v in nested.items():
            table(v, f"{name}.{k}" if name else k)

    table(data, "")
    return "\n".join(lines).lstrip("\n") + "\n"
