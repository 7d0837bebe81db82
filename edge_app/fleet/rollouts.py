"""Rollouts from the fleet: artifacts kept by content (sha256), signed commands to a canary share of the
devices first, to the rest only once every canary promoted the candidate; kept in the fleet's store, so a
restarted fleet resumes where it was.

- ``ArtifactStore`` (``<state>/artifacts/<sha256>``): an ONNX artifact, its metadata sidecar and its
  thresholds file, each stored under its own digest (written atomically), and a *manifest* naming the three
  (``{"model": {"sha256", "size"}, "meta": ..., "thresholds": ... | null}``) whose own sha256 is the
  artifact's digest. ``POST /api/rollouts`` names an artifact by path (ingested then) or by digest.
- ``Rollouts``: ``start`` picks the devices (a list, or a ``group``: the devices whose name starts with
  it), the canary share (at least one device), signs one command per device (``rollout.commands``), publishes
  it retained on ``<prefix>/<device>/command``; ``tick`` reads each device's retained status
  (``models.NAME.candidate`` with this rollout's id) and moves the rollout on: canary -> rest -> done, or
  ``halted`` when a canary rejected, rolled back or failed. Publishing the same signed command again after
  a restart is harmless: the device applies a command id once.

Rollouts are kept in the fleet's store (SQLite, or the PostgreSQL every instance shares): a fleet killed
mid-rollout and restarted, or another instance, carries on from the devices' status; each step is one
transaction (``store.update_rollout``). The artifact files stay under ``--state/artifacts`` of the instance
that took the POST: devices download from its ``--url``.
"""
from __future__ import annotations

import json
import logging
import math
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.artifact import sha256_file, write_atomic
from ..events.schema import utc_now
from ..rollout.commands import Signer, manifest_digest

log = logging.getLogger("edge_app.fleet")
DONE = ("promoted", "kept")
BAD = ("rejected", "rolled_back", "failed", "cancelled")


class ArtifactStore:
    def __init__(self, folder: Path) -> None:
        self.dir = Path(folder)
        self.dir.mkdir(parents=True, exist_ok=True)

    def _put(self, path: Path) -> dict[str, Any]:
        digest = sha256_file(path)
        target = self.dir / digest
        if not target.is_file():
            write_atomic(target, Path(path).read_bytes())
        return {"sha256": digest, "size": target.stat().st_size}

    def ingest(self, onnx: Path) -> tuple[str, dict[str, Any]]:
        """An artifact by its ONNX path (its sidecar and thresholds beside it) -> (digest, manifest)."""
        onnx = Path(onnx)
        meta = onnx.with_suffix(".json")
        if not onnx.is_file() or not meta.is_file():
            raise ValueError(f"artifact {onnx}: expected the ONNX file and its metadata {meta.name} beside it")
        thr = onnx.with_suffix(".thresholds.json")
        man = {"model": self._put(onnx), "meta": self._put(meta), "thresholds": self._put(thr) if thr.is_file() else None}
        digest = manifest_digest(man)
        write_atomic(self.dir / f"{digest}.manifest.json", json.dumps(man, sort_keys=True))
        return digest, man

    def manifest(self, digest: str) -> dict[str, Any] | None:
        p = self.dir / f"{digest}.manifest.json"
        return json.loads(p.read_text()) if len(digest) == 64 and p.is_file() else None

    def path(self, digest: str) -> Path | None:
        p = self.dir / digest
        return p if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest) and p.is_file() else None


class Rollouts:
    def __init__(self, store: Any, artifacts: ArtifactStore, signer: Signer, publish: Callable[[str, bytes], Any],
                 url: str, prefix: str = "edge", legacy: Path | None = None) -> None:
        """store: the fleet's store (``FleetStore`` or ``PgFleetStore``: the rollouts and the devices' status);
        publish(topic, payload): retained, QoS 1; url: the fleet's own address the devices download from;
        legacy: a ``rollouts.json`` of an earlier version, taken into the store once."""
        self.store, self.artifacts, self.signer, self.publish = store, artifacts, signer, publish
        self.url, self.prefix = url.rstrip("/"), prefix
        if legacy is not None and legacy.is_file():
            known = {r["id"] for r in store.rollouts()}
            for r in json.loads(legacy.read_text()).values():
                if r.get("id") not in known:
                    store.add_rollout(r)
            legacy.replace(legacy.with_suffix(".json.imported"))
            log.info("fleet: rollouts of %s moved into the store", legacy)

    def start(self, body: Any) -> dict[str, Any]:
        """``{"model", "artifact": PATH | DIGEST, "devices": [...] | "group": PREFIX, "canary": 0.2}``."""
        if not isinstance(body, dict) or set(body) - {"model", "artifact", "devices", "group", "canary"}:
            raise ValueError("expected {\"model\", \"artifact\", \"devices\" | \"group\", \"canary\"}")
        model, art = body.get("model"), body.get("artifact")
        if not isinstance(model, str) or not model or not isinstance(art, str) or not art:
            raise ValueError("model and artifact: expected a model name and an artifact path or digest")
        canary = body.get("canary", 0.2)
        if not isinstance(canary, (int, float)) or isinstance(canary, bool) or not 0 < canary <= 1:
            raise ValueError(f"canary = {canary!r}: expected a share in (0, 1]")
        known = [d["device"] for d in self.store.devices()]
        if isinstance(body.get("devices"), list):
            devices = [str(d) for d in body["devices"]]
            missing = [d for d in devices if d not in known]
            if missing:
                raise ValueError(f"devices {missing[:10]}: not known to this fleet")
        elif isinstance(body.get("group"), str):
            devices = sorted(d for d in known if d.startswith(body["group"]))
        else:
            raise ValueError("devices (a list) or group (a name prefix): one of them")
        if not devices:
            raise ValueError("no device to roll out to")
        manifest = self.artifacts.manifest(art)
        digest = art
        if manifest is None:
            digest, manifest = self.artifacts.ingest(Path(art))
        rid = f"r{int(time.time())}-{secrets.token_hex(3)}"
        k = max(1, math.ceil(canary * len(devices)))
        r = {"id": rid, "model": model, "digest": digest, "manifest": manifest, "devices": devices,
             "canary": devices[:k], "phase": "canary", "issued": [], "state": "running", "created": time.time(),
             "history": [[time.time(), "canary", devices[:k]]]}
        self.store.add_rollout(r)  # first: a fleet killed now still knows the rollout, and issues it on restart
        r = self.store.update_rollout(rid, lambda doc: self._step(doc, self._statuses())) or r
        log.info("fleet: rollout %s of %s (%s) to %d devices, canary %s", rid, model, digest[:12], len(devices), r["canary"])
        return self.view(r)

    def _issue(self, r: dict[str, Any], devices: list[str]) -> None:
        for d in devices:
            doc = self.signer.sign({"v": 1, "id": f"{r['id']}-{d}", "rollout": r["id"], "device": d, "model": r["model"],
                                    "action": "candidate", "url": self.url, "issued": utc_now(),
                                    "artifact": {"digest": r["digest"], "manifest": r["manifest"]}})
            self.publish(f"{self.prefix}/{d}/command", json.dumps(doc).encode())
            if d not in r["issued"]:
                r["issued"].append(d)

    def _statuses(self) -> dict[str, dict[str, Any]]:
        return {d["device"]: d.get("status") or {} for d in self.store.devices()}

    def device_states(self, r: dict[str, Any], status: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
        """Per device of the rollout: its retained status' candidate of this rollout, else issued / waiting."""
        status = self._statuses() if status is None else status
        out = {}
        for d in r["devices"]:
            c = ((status.get(d, {}).get("models") or {}).get(r["model"]) or {}).get("candidate") or {}
            if c.get("rollout") != r["id"]:
                c = {"state": "issued" if d in r["issued"] else "waiting"}
            out[d] = c
        return out

    def _step(self, r: dict[str, Any], status: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
        """One rollout moved on (inside the store's transaction); None when nothing changed."""
        if r["state"] != "running":
            return None
        changed = False
        targets = r["canary"] if r["phase"] == "canary" else r["devices"]
        missing = [d for d in targets if d not in r["issued"]]
        if missing:  # the start, or a fleet killed between storing the rollout and publishing
            self._issue(r, missing)
            changed = True
        states = {d: c.get("state") for d, c in self.device_states(r, status).items()}
        canary = [states[d] for d in r["canary"]]
        now = time.time()
        if r["phase"] == "canary" and any(s in BAD for s in canary):
            r["state"], changed = "halted", True
            r.setdefault("history", []).append([now, "halted", [d for d in r["canary"] if states[d] in BAD]])
            log.warning("fleet: rollout %s halted: a canary device did not promote", r["id"])
        elif r["phase"] == "canary" and all(s in DONE for s in canary):
            r["phase"], changed = "rest", True
            rest = [d for d in r["devices"] if d not in r["canary"]]
            r.setdefault("history", []).append([now, "rest", rest])
            self._issue(r, rest)
            log.info("fleet: rollout %s: every canary promoted; issued to %d more devices", r["id"], len(rest))
        elif r["phase"] == "rest" and all(s in DONE + BAD for s in states.values()):
            r["state"], changed = "done", True
            r.setdefault("history", []).append([now, "done", sorted(d for d, s in states.items() if s in DONE)])
            log.info("fleet: rollout %s done", r["id"])
        return r if changed else None

    def tick(self) -> None:
        """Move every running rollout on from the devices' retained status (one transaction each)."""
        status = self._statuses()
        for r in self.store.rollouts():
            if r["state"] == "running":
                self.store.update_rollout(r["id"], lambda doc: self._step(doc, status))

    def republish(self) -> None:
        """After a (re)start: every running rollout's commands again (retained: the newest for each device;
        a device applies a command id once)."""
        for r in self.store.rollouts():
            if r["state"] == "running":
                self._issue(r, list(r["issued"]))

    def view(self, r: dict[str, Any], status: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        states = self.device_states(r, status)
        by_state: dict[str, list[str]] = {}
        for d, c in states.items():
            by_state.setdefault(c.get("state") or "?", []).append(d)
        return {k: r.get(k) for k in ("id", "model", "digest", "phase", "state", "canary", "devices", "created",
                                       "history")} | {
            "by_state": by_state,
            "metrics": {d: {k: c.get(k) for k in ("metric", "current", "candidate", "delta", "delta_interval",
                                                   "frames", "decision", "reason", "download")}
                        for d, c in states.items()}}

    def all(self) -> list[dict[str, Any]]:
        status = self._statuses()
        return [self.view(r, status) for r in self.store.rollouts()]
