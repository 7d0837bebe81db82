"""The streams over HTTP (routes of the live server): list, add and remove streams while running, and
each stream's own status.

    GET    /api/streams                 the running streams (their config and state)
    POST   /api/streams                 JSON of one [[streams]] table -> 201; 400 naming each bad field
    DELETE /api/streams/NAME            -> 200; 404 for an unknown name
    GET    /streams/NAME/status         one stream's part of /status

A stream added here is checked exactly as a [[streams]] table of the config file (``config.parse_stream``)
and lives until it is removed or until SIGHUP makes the set what the file says again. The live server's
token rule applies (a write takes it from the Authorization header only).
"""
from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler

from ..config import ConfigError, parse_stream
from ..serve.web import HttpService, Route
from .manager import StreamSet

log = logging.getLogger("edge_app.streams")


class StreamsApi:
    def __init__(self, streams: StreamSet) -> None:
        self.streams = streams
        self._lock = threading.Lock()  # one change at a time: a name is checked and taken atomically

    def routes(self) -> dict[str, Route]:
        routes: dict[str, Route] = {"/api/streams": self._collection, "/api/streams/": self._item}
        for name in self.streams.names():
            routes[f"/streams/{name}/status"] = self._status
        return routes

    def writes(self) -> set[str]:
        return {"/api/streams", "/api/streams/"}

    def _collection(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        if req.command == "GET":
            HttpService.send_json(req, 200, {"streams": [
                {"name": r.config.name, "uri": r.config.uri, "source": r.stream.source.stats.state,
                 "models": sorted(r.stream.runs) if r.stream.runs is not None else None}
                for r in self.streams.all()]})
            return
        if req.command != "POST":
            HttpService.send_json(req, 405, {"error": "POST a stream to /api/streams; DELETE /api/streams/NAME"})
            return
        try:
            body = HttpService.read_json(req, 64 * 2**10)  # one [[streams]] table: names, a URI, a few keys
        except ValueError as exc:
            HttpService.send_json(req, HttpService.error_code(exc), {"error": str(exc), "problems": [str(exc)]})
            return
        with self._lock:
            try:
                sc = parse_stream(self.streams.cfg, body, set(self.streams.names()))
            except ConfigError as exc:
                HttpService.send_json(req, 400, {"error": str(exc), "problems": exc.problems})
                return
            try:
                running = self.streams.add(sc)
            except (OSError, ValueError, RuntimeError) as exc:  # e.g. an output that cannot be opened
                log.warning("stream %s not added: %s", sc.name, exc)
                HttpService.send_json(req, 400, {"error": f"stream {sc.name!r}: {exc}", "problems": [str(exc)]})
                return
        HttpService.send_json(req, 201, {"stream": sc.name, "outputs": [getattr(o, "url", o.name)
                                                                         for o in running.stream.outputs]})

    def _item(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        name = path[len("/api/streams/"):]
        if req.command != "DELETE":
            found = self.streams.stream_status(name)
            if found is None:
                HttpService.send_json(req, 404, {"error": f"no stream {name!r}", "streams": self.streams.names()})
            else:
                HttpService.send_json(req, 200, found)
            return
        with self._lock:
            removed = self.streams.remove(name)
        if not removed:
            HttpService.send_json(req, 404, {"error": f"no stream {name!r}", "streams": self.streams.names()})
            return
        HttpService.send_json(req, 200, {"removed": name, "streams": self.streams.names()})

    def _status(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        name = path[len("/streams/"):-len("/status")]
        found = self.streams.stream_status(name)
        if found is None:
            HttpService.send_json(req, 404, {"error": f"no stream {name!r}"})
        else:
            HttpService.send_json(req, 200, found)

