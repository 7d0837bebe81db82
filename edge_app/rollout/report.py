"""What ``/status`` ``models.NAME.candidate`` (and ``/api/models``, the retained MQTT status, the fleet) says
of a candidate: its state and origin, the rule, a download's progress, the A/B numbers so far or at the
decision (each model's metric with its interval, the difference and its interval, per class P / R / F1 with
Wilson intervals or IoU, latency of each), the shadow's cost, the watch after a promotion."""
from __future__ import annotations

from typing import Any

from .ab import Rule


def describe(cand: Any, rule: Rule, live_seconds: float | None, compact: bool = False) -> dict[str, Any]:
    """cand: a ``manager.Candidate``; live_seconds: the live model's seconds per frame (p50) now."""
    out: dict[str, Any] = {"state": cand.state, "artifact": cand.entry.get("artifact"),
                           "sha256": cand.entry.get("sha256"), "origin": cand.origin, "rollout": cand.rollout,
                           "since": round(cand.since, 3), "reason": cand.reason, "needed": rule.frames,
                           "rule": {"frames": rule.frames, "margin": rule.margin, "confidence": rule.confidence}}
    if cand.progress:
        out["download"] = dict(cand.progress)
    if cand.score is not None:
        numbers = cand.decision or cand.score.bootstrap()
        out.update({k: numbers.get(k) for k in ("frames", "metric", "current", "candidate", "delta",
                                                "current_interval", "candidate_interval", "delta_interval")})
        out["frames"] = numbers.get("frames", 0)
        out["decision"] = ({"verdict": cand.decision["verdict"], "reason": cand.decision.get("reason")}
                           if cand.decision else None)
        lat = cand.score.latency_ms()
        out["latency_ms"] = {"current": round(live_seconds * 1000, 2) if live_seconds else None,
                             "candidate": lat["candidate"]}
        out["per_class"] = cand.score.per_class()
        out["unpaired"] = cand.score.unpaired
    if compact:
        out["per_class"] = {c: {side: {k: v.get(k) for k in ("precision", "recall", "f1", "iou") if k in v}
                                for side, v in row.items()} for c, row in (out.get("per_class") or {}).items()}
    if cand.runner is not None and cand.state in ("shadow", "decided"):
        out["shadow"] = cand.runner.describe()
    if cand.watch is not None:
        out["watch"] = {"frames": len(cand.watch), "needed": cand.watch.frames, "value": cand.watch.value(),
                        "floor": cand.watch.floor}
    return out


def brief(d: dict[str, Any]) -> dict[str, Any]:
    """The numbers an event carries."""
    return {k: d.get(k) for k in ("metric", "current", "candidate", "delta", "delta_interval", "current_interval")}
