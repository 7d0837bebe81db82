"""The fleet's web side: a page over every device (presence, fps, source, rolling P/R per model, counts,
the latest events with their snapshots), ``/api/fleet`` (the page's JSON), ``/snapshot/<event id>/<crop|frame>``,
``/metrics`` (Prometheus, a ``device`` label on everything) and ``/healthz``. The token rule is the live
page's (``web.authorised``): beyond loopback a token is required, on every request.
"""
from __future__ import annotations

import json
import re
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from ..serve import access
from ..serve.web import HttpService, Route
from .collector import FleetCollector
from .store import FleetStore
from ..serve.prometheus import fleet_metrics_text

PAGE = Path(__file__).with_name("page.html")
_RANGE = re.compile(r"^bytes=(\d{1,15})-$")


def fleet_view(store: FleetStore, collector: FleetCollector | None, events: int = 50,
               device: str | None = None, rollouts: Any = None) -> dict[str, Any]:
    now = time.time()
    devices = store.devices()
    for d in devices:
        d["age_s"] = round(now - d["last_seen"], 1) if d["last_seen"] else None
    return {"time": now, "collector": collector.describe() if collector is not None else None,
            "rollouts": rollouts.all() if rollouts is not None else [],
            "online": sum(d["online"] for d in devices), "devices": devices,
            "events": store.recent_events(events, device)}


class FleetServer(HttpService):
    def __init__(self, store: FleetStore, collector: FleetCollector | None, *, host: str = "127.0.0.1",
                 port: int = 8090, token: str = "", rollouts: Any = None, download_bps: float = 0.0) -> None:
        """rollouts: ``fleet.rollouts.Rollouts`` (``/api/rollouts``, ``/artifacts/<sha256>``), or None;
        download_bps: bytes per second each artifact download may take (0: as fast as the link goes)."""
        self.store, self.collector, self.rollouts = store, collector, rollouts
        self.download_bps = float(download_bps)
        super().__init__(host=host, port=port, token=token, name="fleet-http")

    def routes(self) -> dict[str, Route]:
        return {"/": self._page, "/index.html": self._page, "/api/fleet": self._api, "/snapshot/": self._snapshot,
                "/metrics": self._metrics, "/healthz": self._health, "/api/rollouts": self._rollouts,
                "/api/rollouts/key": self._key, "/artifacts/": self._artifact}

    def writes(self) -> set[str]:
        return {"/api/rollouts"}

    def _rollouts(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        if self.rollouts is None:
            self.send_json(req, 404, {"error": "rollouts need a signing key (--signing-key or --command-secret)"})
            return
        if req.command == "GET":
            self.send_json(req, 200, {"rollouts": self.rollouts.all()})
            return
        try:
            body = self.read_json(req, 64 * 2**10)
            out = self.rollouts.start(body)
        except (ValueError, OSError) as exc:
            self.send_json(req, self.error_code(exc) if hasattr(exc, "reason") else 400, {"error": str(exc)})
            return
        self.send_json(req, 201, out)

    def _key(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        signer = getattr(self.rollouts, "signer", None)
        self.send_json(req, 200, {"alg": getattr(signer, "alg", None), "public_key": getattr(signer, "public_key", "")})

    def _artifact(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        """A stored artifact file by its sha256, whole or from a byte (``Range: bytes=N-``: a resumed
        download), streamed from the file at most ``download_bps`` (a fleet on thin links: devices' video
        uploads keep their share); a long download is a stream, not held to the request deadline."""
        found = self.rollouts.artifacts.path(path.rsplit("/", 1)[-1]) if self.rollouts is not None else None
        if found is None:
            self.send(req, 404, b"no such artifact\n", "text/plain")
            return
        size = found.stat().st_size
        m = _RANGE.match(req.headers.get("Range", ""))
        start = int(m.group(1)) if m else 0
        if start >= size > 0:
            self.send(req, 416, b"range beyond the file\n", "text/plain", (("Content-Range", f"bytes */{size}"),))
            return
        req.send_response(206 if start else 200)
        req.send_header("Content-Type", "application/octet-stream")
        req.send_header("Content-Length", str(size - start))
        for key, value in access.COMMON_HEADERS:
            req.send_header(key, value)
        if start:
            req.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        req.end_headers()
        self.stream_started(req)
        t0, sent = time.monotonic(), 0
        with open(found, "rb") as fh:
            fh.seek(start)
            while chunk := fh.read(1 << 16):
                req.wfile.write(chunk)
                sent += len(chunk)
                if self.download_bps > 0:
                    ahead = sent / self.download_bps - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)

    def _page(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        self.send_page(req, PAGE)

    def _view(self, query: dict[str, list[str]]) -> dict[str, Any]:
        try:
            limit = max(1, min(1000, int(query.get("events", ["50"])[0])))
        except ValueError:
            limit = 50
        return fleet_view(self.store, self.collector, limit, query.get("device", [None])[0], self.rollouts)

    def _api(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        self.send(req, 200, json.dumps(self._view(query), default=str).encode(), "application/json")

    def _metrics(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        self.send(req, 200, fleet_metrics_text(self._view(query)), "text/plain; version=0.0.4")

    def _snapshot(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        parts = path.split("/")  # ["", "snapshot", id, kind]
        found = self.store.snapshot(parts[2], parts[3]) if len(parts) == 4 else None
        if found is None:
            self.send(req, 404, b"no such snapshot\n", "text/plain")
        else:
            self.send(req, 200, found, "image/jpeg")

    def _health(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        """503 when the writer thread died (a restart helps); 200 "degraded" while the broker is away."""
        c = self.collector
        reasons = []
        state = "ok"
        if c is not None and not c.alive:
            state, reasons = "failing", ["the fleet's writer thread stopped"]
        elif c is not None and c.state != "connected":
            state, reasons = "degraded", [f"broker {c.state}: {c.last_error}"]
        body = json.dumps({"state": state, "reasons": reasons}) + "\n"
        self.send(req, 503 if state == "failing" else 200, body.encode(), "application/json")
