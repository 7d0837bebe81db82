"""The watchdog's meaning: the process works, not "frames flow".

- ``failing``: a pipeline thread has died or has not come round its loop for ``wedged_after`` seconds
  (stuck in a call). Watchdog pings stop, so systemd restarts the service: a restart can fix this.
- ``degraded``: every thread is alive, but no frames come: the camera is away (reconnecting, with the
  reason), a file ended, or frames stopped reaching the outputs. Pings go on: restarting cannot bring a
  camera back, and a camera that reboots for 30-90 s must not drive the unit into its start limit.
- ``ok``: frames reach the outputs.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STATES = ("ok", "degraded", "failing")


@dataclass(frozen=True)
class Health:
    state: str                 # one of STATES
    reasons: tuple[str, ...]   # empty when ok

    @property
    def works(self) -> bool:
        """Whether the watchdog may be pinged."""
        return self.state != "failing"

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "reasons": list(self.reasons)}


def assess(now: float, threads: Mapping[str, tuple[bool, float]], source: Any, last_output_at: float,
           started_at: float, *, wedged_after: float = 15.0, output_timeout: float = 5.0) -> Health:
    """threads: name -> (alive, monotonic time of its last heartbeat); source: SourceStats;
    last_output_at: monotonic time a frame last reached the outputs (0 = never)."""
    failing = []
    for name, (alive, beat) in threads.items():
        if not alive:
            if name == "source" and source.state == "ended":
                continue  # a file that is not looped ends its thread normally
            failing.append(f"the {name} thread is not running")
        elif now - beat > wedged_after:
            failing.append(f"the {name} thread has been stuck for {now - beat:.0f} s")
    if failing:
        return Health("failing", tuple(failing))
    degraded = []
    if source.state in ("reconnecting", "starting") and (source.lost_since or source.state == "reconnecting"):
        since = now - source.lost_since if source.lost_since else 0.0
        retry = max(0.0, source.retry_at - now) if source.retry_at else 0.0
        degraded.append(f"source lost for {since:.0f} s, reconnect attempt {source.reconnects} "
                        f"(next in {retry:.0f} s): {source.last_error or 'no frame yet'}")
    elif source.state == "ended":
        degraded.append("source ended (not looping)")
    elif source.state == "stopped":
        degraded.append(f"source stopped: {source.last_error or 'unknown reason'}")
    elif now - (last_output_at or started_at) > output_timeout:
        what = "no frame has reached the outputs" if not last_output_at else "no frame reached the outputs"
        degraded.append(f"{what} for {now - (last_output_at or started_at):.0f} s (source {source.state})")
    return Health("degraded", tuple(degraded)) if degraded else Health("ok", ())
