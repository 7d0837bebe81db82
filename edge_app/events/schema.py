"""The event schema, version 1 (documented in the README; every event is one JSON object).

Common fields: ``v`` (schema version), ``id`` ("<device>-<seq>": unique, the subscriber de-duplicates by
it), ``seq`` (per device, persistent across restarts, increasing), ``type``, ``device``, ``stream``,
``time`` (UTC ISO 8601 with milliseconds), ``mono`` (the device's monotonic clock, s). Per type:

- ``track_new`` / ``track_update`` / ``track_end``: model, class, score (best so far), box (xyxy px),
  track_id, ``duration_s``; ``snapshot`` {"crop": path, "frame": path} of the best-scoring frame (the crop
  and the frame are also published on ``<prefix>/<device>/snapshot/<id>/{crop,frame}``)
- ``line_crossed``: line, direction ("in" / "out"), model, class, track_id, score, box
- ``zone_entered`` / ``zone_left``: zone, model, class, track_id, score, box; zone_left adds dwell_s
- ``counts`` (periodic): lines {name: {in: {class: n}, out: {...}}}, zones {name: {occupancy, entries, exits}}
- ``drift``: model, message (rolling precision/recall below its floor)
- ``source_lost`` / ``source_back``: uri, reason
- ``model_reloaded``: models (what runs now, thresholds from where)
"""
from __future__ import annotations

import datetime as dt
import time
from typing import Any

VERSION = 1
TYPES = ("track_new", "track_update", "track_end", "line_crossed", "zone_entered", "zone_left", "counts",
         "drift", "source_lost", "source_back", "model_reloaded")


def utc_now(now: float | None = None) -> str:
    t = time.time() if now is None else now
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_event(kind: str, seq: int, device: str, stream: str, **fields: Any) -> dict[str, Any]:
    """One event (a dict ready for JSON); ``fields`` are the type's own (see the module docstring)."""
    if kind not in TYPES:
        raise ValueError(f"unknown event type {kind!r}: expected one of {TYPES}")
    return {"v": VERSION, "id": f"{device}-{seq}", "seq": seq, "type": kind, "device": device, "stream": stream,
            "time": utc_now(), "mono": round(time.monotonic(), 3), **fields}
