"""Lines and zones edited in the browser (the live page's editor), saved into the config file the app
runs from and applied to the running stream without dropping it.

    GET  /api/geometry/NAME    {"stream", "size": [w, h], "lines": [...], "zones": [...] (frame pixels),
                                "version": the config file's sha256, "saved_to": its path or null}
    POST /api/geometry/NAME    {"lines": [{"name", "points": [[x, y], [x, y]], "classes": [], "model": ""}],
                                "zones": [...], "version": ...} -> 200 {"saved_to", "version", ...};
                                400 {"problems": [...]} naming each; 409 when the file changed on disk since
                                the page read it (nothing written); the running stream untouched on any error

The new tables replace the stream's: ``[[analytics.lines]]`` / ``[[analytics.zones]]`` for a single
``[source]``, that stream's ``[[streams.analytics.lines]]`` / ``...zones]]`` for ``[[streams]]``. The file is
edited with tomlkit (comments and layout kept), the whole result loaded and checked like any config (names,
points inside the frame, a zone of at least 3 points that does not cross itself, a line of two distinct
points), then written atomically; only then does the stream count on the new geometry (counts of lines
and zones left as they were go on). A run without a config file applies the change to this run only.
Writes need the token like every write of the live server.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from ..config import ConfigError, load_config
from ..config.edit import edit_text
from ..config.schema import AnalyticsConfig
from ..core.artifact import write_atomic
from ..serve.web import HttpService, Route
from .manager import StreamSet

log = logging.getLogger("edge_app.streams")


def _sha(path: Path | None) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path is not None and path.is_file() else None


def _shapes(items: tuple[Any, ...], width: int, height: int) -> list[dict[str, Any]]:
    """Config lines/zones in frame pixels (normalised ones scaled), as the page draws them."""
    out = []
    for it in items:
        scale = (width, height) if it.units == "normalized" else (1, 1)
        out.append({"name": it.name, "points": [[round(p[0] * scale[0], 1), round(p[1] * scale[1], 1)] for p in it.points],
                    "classes": list(it.classes), "model": it.model})
    return out


def _tables(items: Any, kind: str) -> list[dict[str, Any]]:
    """The posted shapes as TOML tables (pixels); shape problems are the config check's to name."""
    if not isinstance(items, list):
        raise ConfigError([f"{kind}: expected a list of {{\"name\", \"points\"}}"], "geometry")
    out = []
    for i, it in enumerate(items):
        if not isinstance(it, dict) or "name" not in it or "points" not in it:
            raise ConfigError([f"{kind}[{i}]: expected {{\"name\": ..., \"points\": [[x, y], ...]}}"], "geometry")
        table: dict[str, Any] = {"name": it["name"], "points": it["points"]}
        for key in ("classes", "model"):
            if it.get(key):
                table[key] = it[key]
        out.append(table)
    return out


class GeometryApi:
    def __init__(self, streams: StreamSet, config_path: Path | None) -> None:
        """config_path: the file the app runs from (None or absent: changes apply to this run only)."""
        self.streams = streams
        self.path = Path(config_path) if config_path is not None and Path(config_path).is_file() else None
        self._lock = threading.Lock()

    def routes(self) -> dict[str, Route]:
        return {"/api/geometry/": self._route}

    def writes(self) -> set[str]:
        return {"/api/geometry/"}

    def _route(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        name = path[len("/api/geometry/"):]
        running = self.streams.get(name)
        if running is None:
            HttpService.send_json(req, 404, {"error": f"no stream {name!r} (streams: {', '.join(self.streams.names())})"})
            return
        if req.command == "GET":
            HttpService.send_json(req, 200, self.describe(name))
            return
        try:
            body = HttpService.read_json(req, 256 * 2**10)
            if not isinstance(body, dict):
                raise ConfigError(["body: expected {\"lines\": [...], \"zones\": [...], \"version\": ...}"], "geometry")
            with self._lock:
                answer = self.apply(name, _tables(body.get("lines", []), "lines"), _tables(body.get("zones", []), "zones"),
                                    body.get("version"))
        except ConfigError as exc:
            code = 409 if exc.problems and exc.problems[0].startswith("the config file changed") else 400
            HttpService.send_json(req, code, {"error": str(exc), "problems": exc.problems})
            return
        except ValueError as exc:
            HttpService.send_json(req, HttpService.error_code(exc), {"error": str(exc), "problems": [str(exc)]})
            return
        HttpService.send_json(req, 200, answer)

    def describe(self, name: str) -> dict[str, Any]:
        r = self.streams.get(name)
        assert r is not None
        a, w, h = r.config.analytics, r.config.width, r.config.height
        return {"stream": name, "size": [w, h], "lines": _shapes(a.lines, w, h), "zones": _shapes(a.zones, w, h),
                "version": _sha(self.path), "saved_to": str(self.path) if self.path else None}

    def apply(self, name: str, lines: list[dict[str, Any]], zones: list[dict[str, Any]],
              version: str | None) -> dict[str, Any]:
        """Check, save, then apply (ConfigError names what is wrong; nothing written or changed then)."""
        r = self.streams.get(name)
        assert r is not None
        saved = None
        if self.path is not None and self._in_file(name):
            if version != _sha(self.path):
                raise ConfigError(["the config file changed on disk since this page read it: reload the page "
                                   "(nothing was written)"], str(self.path))
            text = edit_text(self.path.read_text(), {}, lambda doc: self._replace(doc, name, lines, zones),
                             where=str(self.path))
            # the whole file checked as `edit-app run` would load it (points in the frame, crossings, names)
            probe = self.path.with_name(f".{self.path.name}.geometry-check")
            try:
                write_atomic(probe, text)
                cfg = load_config(probe)
            finally:
                probe.unlink(missing_ok=True)
            write_atomic(self.path, text)
            saved = str(self.path)
            new = next(s for s in cfg.stream_configs() if s.name == name).analytics
            self.streams.cfg = dataclasses.replace(self.streams.cfg, analytics=cfg.analytics, streams=cfg.streams)
            object.__setattr__(self.streams.cfg, "base_dir", cfg.base_dir)
        else:
            new = self._checked(r.config, lines, zones)
        self.streams.set_geometry(name, new)
        log.info("stream %s: %d lines and %d zones%s", name, len(new.lines), len(new.zones),
                 f", saved to {saved}" if saved else " (this run only: no config file)")
        return {**self.describe(name), "saved_to": saved}

    def _in_file(self, name: str) -> bool:
        """Whether the stream is the file's (the single [source], or one of its [[streams]])."""
        cfg = self.streams.cfg
        return (not cfg.streams and name == "main") or any(s.name == name for s in cfg.streams)

    def _replace(self, doc: Any, name: str, lines: list[dict[str, Any]], zones: list[dict[str, Any]]) -> None:
        """The stream's lines and zones in the TOML document: a table whose shape did not change is left
        as it is (its comments too), a moved one gets its new points in pixels, new ones are appended."""
        import tomlkit

        r = self.streams.get(name)
        assert r is not None
        shown = {("lines", d["name"]): d for d in _shapes(r.config.analytics.lines, r.config.width, r.config.height)}
        shown.update({("zones", d["name"]): d for d in _shapes(r.config.analytics.zones, r.config.width, r.config.height)})
        table = next(s for s in doc["streams"] if s.get("name") == name) if "streams" in doc else doc
        section = table.setdefault("analytics", tomlkit.table())
        for key, items in (("lines", lines), ("zones", zones)):
            old = {t.get("name"): t for t in section.get(key, [])}
            aot = tomlkit.aot()
            for item in items:
                t = old.get(item["name"])
                if t is None:
                    t = tomlkit.table()
                    for k, v in item.items():
                        t[k] = v
                else:
                    before = shown.get((key, item["name"]), {})
                    if before.get("points") != item["points"]:
                        t["points"] = item["points"]
                        if "units" in t:
                            t["units"] = "pixels"  # the page works in the frame's pixels
                    for k in ("classes", "model"):
                        if item.get(k, [] if k == "classes" else "") != before.get(k, [] if k == "classes" else ""):
                            t[k] = item.get(k, [] if k == "classes" else "")
                aot.append(t)
            if items:
                section[key] = aot
            elif key in section:
                del section[key]

    def _checked(self, sc: Any, lines: list[dict[str, Any]], zones: list[dict[str, Any]]) -> AnalyticsConfig:
        """A run without a config file: the shapes checked by the config's own rules, in memory."""
        from ..config import analytics_problems
        from ..config.loader import parse

        new, problems = parse(AnalyticsConfig, {"anchor": sc.analytics.anchor, "trail_s": sc.analytics.trail_s,
                                                "lines": lines, "zones": zones})
        if new is None or problems:
            raise ConfigError(problems or ["bad geometry"], "geometry")
        problems = analytics_problems(self.streams.cfg, new, "analytics", sc.width, sc.height,
                                      set(sc.models) if sc.models else None)
        if problems:
            raise ConfigError(problems, "geometry")
        return new
