"""TOML -> frozen dataclasses, with every error naming its key path, the value and what was expected.

The schema is plain dataclasses whose fields carry constraints made with ``spec``; this module knows
nothing about the product's keys. All errors of a file are collected, not only the first.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable

if sys.version_info >= (3, 11):
    import tomllib
else:  # JetPack 6 ships Python 3.10
    import tomli as tomllib


class ConfigError(Exception):
    """One or more problems in a configuration; ``problems`` lists them, one line each."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n  " + "\n  ".join(self.problems))


def spec(default: Any = dataclasses.MISSING, *, doc: str = "", ge: float | None = None,
         le: float | None = None, gt: float | None = None, lt: float | None = None,
         choices: tuple[Any, ...] | None = None, factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field with constraints checked by the loader."""
    meta = {"doc": doc, "ge": ge, "le": le, "gt": gt, "lt": lt, "choices": choices}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a table"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            Path: "a path string", type(None): "nothing"}.get(tp, getattr(tp, "__name__", str(tp)))


class _Parser:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, value: Any, expected: str) -> None:
        self.problems.append(f"{path} = {value!r}: expected {expected}")

    def convert(self, tp: Any, value: Any, path: str) -> Any:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            args = typing.get_args(tp)
            if value is None and type(None) in args:
                return None
            for arg in args:
                if arg is type(None):
                    continue
                sub = _Parser()
                out = sub.convert(arg, value, path)
                if not sub.problems:
                    return out
            self.fail(path, value, _type_name(tp))
            return None
        if origin is tuple:
            (item_tp, *_rest) = typing.get_args(tp)
            if not isinstance(value, list):
                self.fail(path, value, _type_name(tp))
                return ()
            return tuple(self.convert(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value))
        if origin is dict:
            _key_tp, val_tp = typing.get_args(tp)
            if not isinstance(value, dict):
                self.fail(path, value, "a table")
                return {}
            out = {k: self.convert(val_tp, v, f"{path}.{k}") for k, v in value.items()}
            return {k: v for k, v in out.items() if v is not None}
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                self.fail(path, value, "a table")
                return None
            return self.build(typing.cast(type, tp), value, path)
        if tp is bool:
            if not isinstance(value, bool):
                self.fail(path, value, "true or false")
            return value
        if tp is int:
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(path, value, "an integer")
            return value
        if tp is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.fail(path, value, "a number")
                return value
            if not math.isfinite(value):
                self.fail(path, value, "a finite number")
            return float(value)
        if tp is str:
            if not isinstance(value, str):
                self.fail(path, value, "a string")
            return value
        if tp is Path:
            if not isinstance(value, str):
                self.fail(path, value, "a path string")
                return Path()
            return Path(value)
        raise TypeError(f"schema type {tp!r} at {path} is not supported")  # a bug in the schema

    def check(self, f: dataclasses.Field, value: Any, path: str) -> None:
        m = f.metadata
        if value is None or isinstance(value, (bool, dict, Path)):
            return
        if m.get("choices") is not None:
            values = value if isinstance(value, tuple) else (value,)
            for v in values:
                if v not in m["choices"]:
                    self.fail(path, v, "one of " + ", ".join(repr(c) for c in m["choices"]))
        if isinstance(value, (int, float)):
            for key, ok, word in (("ge", lambda v, b: v >= b, ">="), ("le", lambda v, b: v <= b, "<="),
                                  ("gt", lambda v, b: v > b, ">"), ("lt", lambda v, b: v < b, "<")):
                bound = m.get(key)
                if bound is not None and not ok(value, bound):
                    self.fail(path, value, f"a value {word} {bound}")

    def build(self, cls: type, data: dict[str, Any], path: str) -> Any:
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        for key in data:
            if key not in fields:
                self.problems.append(f"{_join(path, key)}: unknown key (expected one of: "
                                     f"{', '.join(fields)})")
        kwargs: dict[str, Any] = {}
        for name, f in fields.items():
            key_path = _join(path, name)
            if name not in data:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    self.problems.append(f"{key_path}: missing (expected {_type_name(hints[name])})")
                continue
            before = len(self.problems)
            value = self.convert(hints[name], data[name], key_path)
            if len(self.problems) == before:
                self.check(f, value, key_path)
            tp = hints[name]
            nested = (dataclasses.is_dataclass(tp) or typing.get_origin(tp) is dict
                      or (typing.get_origin(tp) is tuple and dataclasses.is_dataclass(typing.get_args(tp)[0])))
            if len(self.problems) == before or (nested and value is not None):
                kwargs[name] = value
            # else: a bad scalar keeps its default, so cross-key checks still see well-typed values
        try:
            return cls(**kwargs)
        except TypeError:
            return None  # a required key is missing: already reported above


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def parse(cls: type, data: dict[str, Any]) -> tuple[Any, list[str]]:
    """Build ``cls`` from a parsed TOML table.

    Returns the object (bad values replaced by their defaults, so later checks can still run) and the
    list of problems, each naming its key path.
    """
    parser = _Parser()
    result = parser.build(cls, data, "")
    return result, parser.problems


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file; a missing or malformed file is a ConfigError naming it."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"file not found: {path}"], str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"not valid TOML: {exc}"], str(path)) from None
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc}"], str(path)) from None


def field_docs(cls: type, prefix: str = "") -> list[tuple[str, str]]:
    """(key path, doc) for every field, for documentation and tests that the shipped file covers all."""
    out: list[tuple[str, str]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        key = _join(prefix, f.name)
        if dataclasses.is_dataclass(tp):
            out.extend(field_docs(typing.cast(type, tp), key))
        elif typing.get_origin(tp) is dict and dataclasses.is_dataclass(typing.get_args(tp)[1]):
            out.extend(field_docs(typing.get_args(tp)[1], f"{key}.*"))
        else:
            out.append((key, f.metadata.get("doc", "")))
    return out
