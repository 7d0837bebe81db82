"""JSON from peers, within bounds: every document that arrives from outside (an MQTT message, an HTTP
body) is read here, so a hostile one costs a clear refusal, never a crash, a stuck thread or a huge store.

Bounds: bytes, nesting depth, entries per object or list and in all, string and key lengths, integers
within +-2**53 (what a JSON reader in any language keeps exactly and what SQLite's INTEGER holds), finite
numbers only (``NaN`` / ``Infinity`` are not JSON). A refusal is a ``BoundError``: ``reason`` is a short
word for counters (``too_large``, ``depth``, ``too_many``, ...), the text says what was expected.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

MAX_INT = 2**53


class BoundError(ValueError):
    """A document outside its bounds (or not JSON); ``reason`` is a short counter label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Bounds:
    depth: int = 8            # nesting of objects and lists
    string: int = 4096        # characters of one string
    key: int = 256            # characters of one key
    items: int = 2000         # entries of one object or list
    total_items: int = 20000  # entries of the whole document


def _no_constant(name: str) -> Any:
    raise BoundError("not_finite", f"{name} is not a JSON number (finite numbers only)")


def loads(payload: bytes | str, max_bytes: int, bounds: Bounds = Bounds(), where: str = "body") -> Any:
    """The JSON document of ``payload``, checked: at most ``max_bytes``, then ``check``."""
    if len(payload) > max_bytes:
        raise BoundError("too_large", f"{where} of {len(payload)} bytes: at most {max_bytes}")
    try:
        text = payload.decode() if isinstance(payload, bytes) else payload
        doc = json.loads(text, parse_constant=_no_constant)
    except BoundError:
        raise
    except RecursionError:
        raise BoundError("depth", f"{where}: nested deeper than {bounds.depth} levels") from None
    except UnicodeDecodeError:
        raise BoundError("not_utf8", f"{where}: not UTF-8 text") from None
    except ValueError as exc:
        raise BoundError("not_json", f"{where}: not JSON ({exc})") from None
    check(doc, bounds, where)
    return doc


def check(doc: Any, bounds: Bounds = Bounds(), where: str = "body") -> None:
    """Depth, lengths, integer range and finite numbers over the whole document (iteratively: a hostile
    depth never reaches Python's recursion limit here)."""
    stack: list[tuple[Any, int, str]] = [(doc, 1, where)]
    seen = 0
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > bounds.depth:
                raise BoundError("depth", f"{path}: nested deeper than {bounds.depth} levels")
            if len(value) > bounds.items:
                raise BoundError("too_many", f"{path}: {len(value)} entries, at most {bounds.items}")
            seen += len(value)
            if seen > bounds.total_items:
                raise BoundError("too_many", f"{where}: more than {bounds.total_items} entries in all")
            if isinstance(value, dict):
                for key, item in value.items():
                    if len(key) > bounds.key:
                        raise BoundError("too_long", f"{path}: a key of {len(key)} characters, at most {bounds.key}")
                    stack.append((item, depth + 1, f"{path}.{key}"))
            else:
                stack.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str):
            if len(value) > bounds.string:
                raise BoundError("too_long", f"{path}: a string of {len(value)} characters, at most {bounds.string}")
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not -MAX_INT <= value <= MAX_INT:
                raise BoundError("out_of_range", f"{path}: an integer outside +-2**53")
        elif isinstance(value, float) and not math.isfinite(value):
            raise BoundError("not_finite", f"{path}: not a finite number")
