"""Edits of a user's ``config.toml`` that keep it theirs: comments, order and layout survive (tomlkit
edits the parsed document), the result must pass the schema, and it replaces the file atomically.

Used by ``calibrate --apply`` (precision, thresholds file) and ``service install`` (paths for /etc).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..core.artifact import write_atomic
from .loader import ConfigError, parse


def _tomlkit() -> Any:
    try:
        import tomlkit
    except ImportError:
        raise ConfigError(["editing a config needs tomlkit: pip install -e . (a runtime dependency)"]) from None
    return tomlkit


def _table(doc: Any, path: tuple[str, ...]) -> Any:
    node = doc
    for key in path:
        if key not in node:
            raise KeyError(".".join(path))
        node = node[key]
    return node


def edit_text(text: str, updates: Mapping[tuple[str, ...], Mapping[str, Any]],
              transform: Callable[[Any], None] | None = None, where: str = "config") -> str:
    """``text`` with ``updates`` applied: {("models", "det"): {"precision": "int8"}} sets keys of existing
    tables (KeyError names a missing table); ``transform(doc)`` may edit the document further.
    The result is parsed against the schema; a ConfigError names what it would break."""
    from .schema import AppConfig

    tk = _tomlkit()
    doc = tk.parse(text)
    for path, values in updates.items():
        table = _table(doc, path)
        for key, value in values.items():
            table[key] = value
    if transform is not None:
        transform(doc)
    out = tk.dumps(doc)
    _, problems = parse(AppConfig, tk.parse(out).unwrap())
    if problems:
        raise ConfigError(problems, where)
    return str(out)


def edit_config(path: Path, updates: Mapping[tuple[str, ...], Mapping[str, Any]]) -> None:
    """Apply ``updates`` to the config file in place (atomically; untouched on any error)."""
    path = Path(path)
    write_atomic(path, edit_text(path.read_text(), updates, where=str(path)))
