"""The device's side of a fleet rollout: commands from MQTT (``<prefix>/<device>/command``) checked
(``commands.parse_command``: bounds, fields, identity, digest, signature), the artifact downloaded
(``download.fetch``: resumable, size and sha256 verified, atomic) into ``<state_dir>/artifacts/<digest>/``,
then handed to the manager as a candidate of that rollout. Work happens on the agent's own thread; the MQTT
thread only queues the payload.

Nothing twice: each command id's outcome is kept in ``commands.json``; the retained command delivered again
after a restart resumes a download or a shadow run that had not finished, and is only answered otherwise
(a finished outcome is reported again in the status after a restart, so the fleet's rollout still sees it).
A download that breaks (the fleet away, the link cut) keeps its ``.part`` and is tried again with back-off
(2 s doubling to 60 s); a refused command is logged with its reason, counted (``/status``
``rollout.refused``), and writes nothing.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

from ..logs import log_event
from .commands import CommandError, Verifier, parse_command
from .download import DownloadError, fetch
from .candidate import FINAL
from .manager import RolloutManager
from .state import JsonState

log = logging.getLogger("edge_app.rollout")


class FleetAgent:
    def __init__(self, manager: RolloutManager, device: str, verifier: Verifier, token: str) -> None:
        self.manager, self.device, self.verifier, self.token = manager, device, verifier, token
        self.commands = JsonState(manager.state_dir / "commands.json")
        self.refused: dict[str, int] = {}
        self.last_refusal = ""
        self._queue: queue.Queue[bytes] = queue.Queue(maxsize=64)
        self._retry: dict[str, tuple[float, float, bytes]] = {}  # command id -> (due, delay, payload)
        self._stop = threading.Event()
        for cid, rec in sorted(self.commands.data.items(), key=lambda kv: kv[1].get("at") or 0, reverse=True):
            if rec.get("model") and (rec.get("state") in FINAL or rec.get("state") == "promoted"):
                manager.restore(rec["model"], cid, rec)  # the newest outcome per model
        self._thread = threading.Thread(target=self._loop, name="rollout-agent", daemon=True)
        self._thread.start()
        manager.on_change = self._changed

    @classmethod
    def over(cls, manager: RolloutManager, events: Any, settings: Any) -> FleetAgent | None:
        """The agent on the device's MQTT connection (``events.mqtt``), None without one; ``settings``: the
        config's [rollout] (the fleet's key or secret, the download token)."""
        if events is None or events.mqtt is None:
            return None
        agent = cls(manager, events.device, Verifier(settings.fleet_public_key, settings.fleet_secret),
                    settings.fleet_token)
        events.mqtt.subscribe_commands(agent.on_command)
        return agent

    def on_command(self, payload: bytes) -> None:
        """From the MQTT thread: queue only (a flood is dropped and counted, never waited on)."""
        try:
            self._queue.put_nowait(bytes(payload))
        except queue.Full:
            self._refuse("flood", "more than 64 commands waiting")

    def _refuse(self, reason: str, text: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1
        self.last_refusal = f"{reason}: {text}"
        log_event(log, logging.WARNING, "command_refused", reason=reason, error=text)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                payload: bytes | None = self._queue.get(timeout=0.5)
            except queue.Empty:
                payload = self._due()
            if payload is None:
                continue
            try:
                self.handle(payload)
            except Exception:
                log.exception("rollout: command")

    def _due(self) -> bytes | None:
        now = time.monotonic()
        for cid, (due, delay, payload) in list(self._retry.items()):
            if due <= now:
                self._retry[cid] = (float("inf"), delay, payload)  # handle() sets the next try, or ends it
                return payload
        return None

    def handle(self, payload: bytes) -> None:
        if not payload:
            return  # a retained command cleared by the fleet
        try:
            doc = parse_command(payload, self.device, self.verifier)
        except CommandError as exc:
            self._refuse(exc.reason, str(exc))
            return
        seen = self.commands.get(doc["id"]) or {}
        if seen.get("state") in FINAL or seen.get("state") in ("promoted",):
            log.info("rollout: command %s done before (%s); not applied again", doc["id"], seen["state"])
            return
        name = doc["model"]
        if self.manager.live(name) is None:
            self._refuse("bad_field", f"command {doc['id']}: no model {name!r} on this device")
            return
        if doc["action"] == "cancel":
            self.manager.cancel(name, f"cancelled by rollout {doc['rollout']}")
            self.commands.set(doc["id"], {"state": "cancelled", "at": time.time()})
            return
        cand = self.manager.candidates.get(name)
        if cand is not None and cand.command == doc["id"] and cand.state not in FINAL and cand.state != "downloading":
            return  # running already (a redelivery while it runs)
        self.commands.set(doc["id"], {"state": "downloading", "rollout": doc["rollout"], "model": name,
                                      "at": time.time()})
        try:
            entry = self._download(doc)
        except DownloadError as exc:
            final = exc.reason in ("digest", "size", "http")
            if final:
                self._refuse(exc.reason, f"command {doc['id']}: {exc}")
            else:
                log_event(log, logging.WARNING, "artifact_download_interrupted", command=doc["id"], reason=exc.reason,
                          error=str(exc))
            self.manager.download_failed(name, doc["id"], f"{exc.reason}: {exc}", final)
            if final:
                self._retry.pop(doc["id"], None)
                self.commands.set(doc["id"], {"state": "failed", "reason": str(exc), "rollout": doc["rollout"],
                                              "model": name, "at": time.time()})
            else:  # the fleet away, the link cut: the .part stays, the next try resumes it
                delay = min(60.0, 2 * self._retry.get(doc["id"], (0.0, 1.0, b""))[1])
                self._retry[doc["id"]] = (time.monotonic() + delay, delay, payload)
                log.info("rollout: command %s: download tried again in %.0f s", doc["id"], delay)
            return
        self._retry.pop(doc["id"], None)
        try:
            self.manager.start_candidate(name, entry, origin="fleet", rollout=doc["rollout"], command=doc["id"])
        except ValueError as exc:
            self._refuse("artifact", str(exc))
            self.manager.download_failed(name, doc["id"], str(exc), True)
            self.commands.set(doc["id"], {"state": "failed", "reason": str(exc), "rollout": doc["rollout"],
                                          "model": name, "at": time.time()})
            return

    def _download(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Each file of the manifest into ``<state_dir>/artifacts/<digest>/``, resumed where a try stopped;
        progress in the status (bytes of all files), a log line per file (bytes, resumed from, seconds)."""
        man, digest = doc["artifact"]["manifest"], doc["artifact"]["digest"]
        folder = self.manager.state_dir / "artifacts" / digest
        base = doc["url"].rstrip("/")
        names = {"model": "model.onnx", "meta": "model.json", "thresholds": "model.thresholds.json"}
        parts = [p for p in ("meta", "thresholds", "model") if man.get(p) is not None]
        total = sum(man[p]["size"] for p in parts)
        cand = self.manager.downloading(doc["model"], doc["rollout"], doc["id"], total, str(folder / "model.onnx"))
        paths: dict[str, Path] = {}
        done = 0
        for part in parts:
            f, dest = man[part], folder / names[part]
            partial = dest.with_name(dest.name + ".part")
            resumed = partial.stat().st_size if partial.is_file() and not dest.is_file() else 0
            t0 = time.monotonic()

            def progress(have: int, size: int, before: int = done) -> None:
                cand.progress["bytes"] = before + have

            paths[part] = fetch(f"{base}/artifacts/{f['sha256']}", self.token, dest, f["sha256"], f["size"],
                                progress=progress)
            done += f["size"]
            cand.progress["bytes"] = done
            log_event(log, logging.INFO, "artifact_downloaded", command=doc["id"], file=names[part], bytes=f["size"],
                      resumed_from=resumed, seconds=round(time.monotonic() - t0, 2))
        return {"artifact": str(paths["model"]), "thresholds_file": str(paths.get("thresholds", "")),
                "precision": "fp32", "sha256": man["model"]["sha256"], "digest": digest}

    def _changed(self, cand: Any) -> None:
        if cand.command:
            self.commands.set(cand.command, {"state": cand.state, "rollout": cand.rollout, "reason": cand.reason,
                                             "model": cand.name, "artifact": cand.entry.get("artifact", ""),
                                             "sha256": cand.entry.get("sha256", ""), "at": time.time()})

    def describe(self) -> dict[str, Any]:
        return {"refused": dict(self.refused), "last_refusal": self.last_refusal, "key": self.verifier.alg or None}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
