"""The event schema, version 1: what a device publishes and what the fleet accepts, written once.

Every message a device sends is checked here: the device before it numbers an event (a bug never reaches
the wire), the fleet before anything touches its store (a hostile or broken peer never reaches it). One
module, so the two sides cannot drift apart.

Common fields of an event: ``v`` (schema version), ``id`` ("<device>-<seq>": unique, the subscriber
de-duplicates by it), ``seq`` (per device, persistent across restarts, increasing, no gaps), ``type``,
``device``, ``stream``, ``time`` (UTC ISO 8601 with milliseconds), ``mono`` (the device's monotonic
clock, s). The fields of each type are ``TYPE_FIELDS`` below (required ones; more are allowed, within the
generic bounds).

Bounds (``Limits``): the size of a message per kind (event, status, snapshot), then ``core.bounded_json``'s
(depth, string and list lengths, integers within +-2**53, finite numbers). A message outside them is a
``SchemaError`` whose ``reason`` is a short word for counters (``rejected{reason}``) and whose text says
what was expected.
"""
from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core import bounded_json
from ..core.bounded_json import MAX_INT, BoundError, Bounds

VERSION = 1
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # device and stream names: topics, ids and file names carry them


SchemaError = BoundError  # one refusal type for every peer's document (reason + text)


@dataclass(frozen=True)
class Limits:
    """Bytes per kind of message, and the bounds of every document."""
    event_bytes: int = 32 * 2**10
    status_bytes: int = 64 * 2**10
    snapshot_bytes: int = 4 * 2**20
    bounds: Bounds = Bounds()


LIMITS = Limits()

# -- field checks: each returns None when the value fits, else what was expected -------------------------


def _int(lo: int = -MAX_INT, hi: int = MAX_INT) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        ok = isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi
        return None if ok else f"an integer in [{lo}, {hi}]"
    return check


def _number(v: Any) -> str | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return None if ok else "a finite number"


def _text(limit: int = 256) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        return None if isinstance(v, str) and len(v) <= limit else f"a string of at most {limit} characters"
    return check


def _name(v: Any) -> str | None:
    return None if isinstance(v, str) and NAME.match(v) else "a name of 1-64 letters, digits, '_' or '-'"


def _one_of(*values: str) -> Callable[[Any], str | None]:
    return lambda v: None if v in values else f"one of {list(values)}"


def _numbers(n: int) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        ok = isinstance(v, list) and len(v) == n and all(_number(x) is None for x in v)
        return None if ok else f"a list of {n} finite numbers"
    return check


def _object(v: Any) -> str | None:
    return None if isinstance(v, dict) else "an object"


def _strings(v: Any) -> str | None:
    ok = isinstance(v, list) and all(isinstance(x, str) and len(x) <= 256 for x in v)
    return None if ok else "a list of strings"


def _time(v: Any) -> str | None:
    if isinstance(v, str) and len(v) <= 40 and event_time(v) is not None:
        return None
    return "a UTC ISO 8601 time (2026-12-01T10:00:00.123Z)"


COMMON: dict[str, Callable[[Any], str | None]] = {
    "v": _int(VERSION, VERSION), "id": _text(160), "seq": _int(1, MAX_INT), "type": _text(64), "device": _name,
    "stream": _name, "time": _time, "mono": _number}
_TRACK = {"model": _text(), "track_id": _int(0), "class": _text(), "score": _number, "box": _numbers(4)}
TYPE_FIELDS: dict[str, dict[str, Callable[[Any], str | None]]] = {
    "track_new": _TRACK,
    "track_update": {**_TRACK, "duration_s": _number},
    "track_end": {**_TRACK, "duration_s": _number},
    "line_crossed": {"line": _text(), "direction": _one_of("in", "out"), "model": _text(), "track_id": _int(0),
                     "class": _text()},
    "zone_entered": {"zone": _text(), "model": _text(), "track_id": _int(0), "class": _text()},
    "zone_left": {"zone": _text(), "model": _text(), "track_id": _int(0), "class": _text(), "dwell_s": _number},
    "counts": {"lines": _object, "zones": _object},
    "drift": {"model": _text(), "message": _text(4096)},
    "source_lost": {"uri": _text(4096), "reason": _text(4096)},
    "source_back": {"uri": _text(4096), "reason": _text(4096)},
    "model_reloaded": {"models": _strings},
    # a candidate model's life (edge_app.rollout): its artifact by path on the device and by digest
    "model_candidate": {"model": _text(), "artifact": _text(4096), "sha256": _text(64)},
    "model_promoted": {"model": _text(), "artifact": _text(4096), "sha256": _text(64), "frames": _int(0),
                       "delta": _number},
    "model_rejected": {"model": _text(), "artifact": _text(4096), "sha256": _text(64), "frames": _int(0),
                       "reason": _text(4096)},
    "model_rolled_back": {"model": _text(), "artifact": _text(4096), "sha256": _text(64), "reason": _text(4096)},
}
TYPES = tuple(TYPE_FIELDS)
OPTIONAL: dict[str, Callable[[Any], str | None]] = {"snapshot": _object, "point": _numbers(2)}
_COUNT = _int(0)
# The retained status: only what the fleet reads is typed (the rest is free within the generic bounds).
STATUS_FIELDS: dict[str, Callable[[Any], str | None]] = {
    "device": _name, "fps": lambda v: None if v is None else _number(v), "health": lambda v: None if v is None else _text(32)(v),
    "source": _object, "rolling": _object, "counts": _object, "streams": _object, "time": _text(40),
    "models": _object}


def utc_now(now: float | None = None) -> str:
    t = time.time() if now is None else now
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_time(text: str) -> float | None:
    """UNIX seconds of an event's UTC ISO ``time`` ("2026-12-01T10:00:00.123Z"), None if unreadable."""
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (AttributeError, ValueError, OverflowError):
        return None


def make_event(kind: str, seq: int, device: str, stream: str, **fields: Any) -> dict[str, Any]:
    """One event (a dict ready for JSON); ``fields`` are the type's own (``TYPE_FIELDS``)."""
    if kind not in TYPE_FIELDS:
        raise ValueError(f"unknown event type {kind!r}: expected one of {TYPES}")
    return {"v": VERSION, "id": f"{device}-{seq}", "seq": seq, "type": kind, "device": device, "stream": stream,
            "time": utc_now(), "mono": round(time.monotonic(), 3), **fields}


# -- parsing --------------------------------------------------------------------------------------------

def loads(payload: bytes | str, kind: str, limits: Limits = LIMITS) -> dict[str, Any]:
    """A message's JSON object, checked against the bounds for its ``kind`` ("event" | "status")."""
    cap = limits.event_bytes if kind == "event" else limits.status_bytes
    doc = bounded_json.loads(payload, cap, limits.bounds, kind)
    if not isinstance(doc, dict):
        raise SchemaError("not_object", f"{kind}: expected a JSON object, got {type(doc).__name__}")
    return doc


def _fields(doc: dict[str, Any], table: dict[str, Callable[[Any], str | None]], where: str,
            required: bool = True) -> None:
    for key, check in table.items():
        if key not in doc:
            if required:
                raise SchemaError("missing", f"{where}: no {key!r}")
            continue
        expected = check(doc[key])
        if expected is not None:
            raise SchemaError("bad_field", f"{where}.{key} = {_show(doc[key])}: expected {expected}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_event(doc: dict[str, Any], device: str | None = None, limits: Limits = LIMITS) -> dict[str, Any]:
    """An event's fields and identity; ``device``: the device the message came from (its topic), which
    must be the event's ``device`` and the prefix of its ``id`` (a device speaks only for itself)."""
    bounded_json.check(doc, limits.bounds, "event")
    _fields(doc, COMMON, "event")
    kind = doc["type"]
    if kind not in TYPE_FIELDS:
        raise SchemaError("unknown_type", f"event.type = {_show(kind)}: expected one of {list(TYPES)}")
    _fields(doc, TYPE_FIELDS[kind], f"event ({kind})")
    _fields(doc, OPTIONAL, f"event ({kind})", required=False)
    if doc["id"] != f"{doc['device']}-{doc['seq']}":
        raise SchemaError("identity", f"event.id = {_show(doc['id'])}: expected '<device>-<seq>' "
                                      f"= {doc['device']}-{doc['seq']!r}")
    if device is not None and doc["device"] != device:
        raise SchemaError("identity", f"event of device {_show(doc['device'])} published by {device!r}: "
                                      "a device speaks only for itself")
    return doc


def validate_status(doc: dict[str, Any], device: str, limits: Limits = LIMITS) -> dict[str, Any]:
    """A retained status: the fields the fleet reads have their types; ``device`` (if given in the
    status) is the topic's device."""
    bounded_json.check(doc, limits.bounds, "status")
    _fields(doc, STATUS_FIELDS, "status", required=False)
    if "device" in doc and doc["device"] != device:
        raise SchemaError("identity", f"status of device {_show(doc['device'])} published by {device!r}")
    streams = doc.get("streams") or {}
    places = [("status.counts", doc.get("counts"))]
    for name, stream in streams.items():
        if not isinstance(stream, dict):
            raise SchemaError("bad_field", f"status.streams.{name}: expected an object")
        places.append((f"status.streams.{name}.counts", stream.get("counts")))
    for where, counts in places:
        if counts is not None:
            _check_counts(counts, where)
    return doc


def _check_counts(counts: Any, where: str) -> None:
    """{lines: {name: {total_in, total_out}}, zones: {name: {total}}}: counts are integers >= 0."""
    if not isinstance(counts, dict):
        raise SchemaError("bad_field", f"{where}: expected an object")
    for group, keys in (("lines", ("total_in", "total_out")), ("zones", ("total",))):
        entries = counts.get(group) or {}
        if not isinstance(entries, dict):
            raise SchemaError("bad_field", f"{where}.{group}: expected an object")
        for name, entry in entries.items():
            if not isinstance(entry, dict):
                raise SchemaError("bad_field", f"{where}.{group}.{name}: expected an object")
            for key in keys:
                if key in entry and _COUNT(entry[key]) is not None:
                    raise SchemaError("bad_field", f"{where}.{group}.{name}.{key} = {_show(entry[key])}: "
                                                   "expected a count (an integer >= 0)")


def validate_snapshot(payload: bytes, event_id: str, device: str, limits: Limits = LIMITS) -> None:
    """A snapshot JPEG on ``<prefix>/<device>/snapshot/<event id>/<kind>``."""
    if len(payload) > limits.snapshot_bytes:
        raise SchemaError("too_large", f"snapshot of {len(payload)} bytes: at most {limits.snapshot_bytes}")
    if not event_id.startswith(device + "-"):
        raise SchemaError("identity", f"snapshot {event_id!r} is not an event of device {device!r}")
    if not payload.startswith(b"\xff\xd8"):
        raise SchemaError("not_jpeg", f"snapshot {event_id}: not a JPEG")
