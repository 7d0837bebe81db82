"""Candidate models over HTTP (routes of the live server; writes follow its token rule):

    GET    /api/models                         every model and its candidate (as /status models)
    POST   /api/models/NAME/candidate          {"artifact": PATH, "thresholds_file": PATH?, "precision": ...}
                                               -> 202 and the candidate's state; 400 naming what is wrong
    DELETE /api/models/NAME/candidate          stop the shadow run
    POST   /api/models/NAME/promote            act on a decision now (auto_promote = false), or overrule it
    POST   /api/models/NAME/rollback           back to the previous model
"""
from __future__ import annotations

import re
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from ..core.bounded_json import Bounds
from ..serve.web import HttpService, Route
from .manager import RolloutManager

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class ModelsApi:
    def __init__(self, manager: RolloutManager, models: Callable[[], dict[str, Any]], base: Path) -> None:
        """models(): /status's ``models``; base: relative artifact paths are taken from here (the config's folder)."""
        self.manager, self.models, self.base = manager, models, Path(base)

    def routes(self) -> dict[str, Route]:
        return {"/api/models": self._list, "/api/models/": self._item}

    def writes(self) -> set[str]:
        return {"/api/models/"}

    def _list(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        HttpService.send_json(req, 200, {"models": self.models()})

    def _item(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        parts = path[len("/api/models/"):].split("/")
        if len(parts) != 2 or not _NAME.match(parts[0]) or parts[1] not in ("candidate", "promote", "rollback"):
            HttpService.send_json(req, 404, {"error": f"{path}: expected /api/models/NAME/candidate|promote|rollback"})
            return
        name, action = parts
        if self.manager.live(name) is None:
            HttpService.send_json(req, 404, {"error": f"no model {name!r}", "models": sorted(self.models())})
            return
        if req.command == "GET":
            HttpService.send_json(req, 200, {"candidate": self.manager.describe(name)})
            return
        try:
            if action == "candidate" and req.command == "DELETE":
                if not self.manager.cancel(name, "cancelled over HTTP"):
                    HttpService.send_json(req, 404, {"error": f"model {name}: no candidate in shadow"})
                    return
            elif action == "candidate" and req.command == "POST":
                body = HttpService.read_json(req, 16 * 2**10, Bounds(depth=3, items=16, total_items=32))
                self.manager.start_candidate(name, self._entry(body), origin="api")
            elif action == "promote" and req.command == "POST":
                self.manager.promote(name)
            elif action == "rollback" and req.command == "POST":
                self.manager.rollback(name, "rolled back over HTTP")
            else:
                HttpService.send_json(req, 405, {"error": f"{req.command} {path}: not allowed"})
                return
        except ValueError as exc:
            HttpService.send_json(req, HttpService.error_code(exc), {"error": str(exc)})
            return
        HttpService.send_json(req, 202 if action == "candidate" and req.command == "POST" else 200,
                              {"candidate": self.manager.describe(name)})

    def _entry(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ValueError("body: expected a JSON object {\"artifact\": PATH}")
        unknown = set(body) - {"artifact", "thresholds_file", "precision"}
        if unknown:
            raise ValueError(f"body: unknown keys {sorted(unknown)} (expected artifact, thresholds_file, precision)")
        out: dict[str, Any] = {}
        for key in ("artifact", "thresholds_file"):
            value = body.get(key, "")
            if not isinstance(value, str) or len(value) > 4096:
                raise ValueError(f"{key} = {str(value)[:40]!r}: expected a path")
            if value:
                p = Path(value).expanduser()
                out[key] = str(p if p.is_absolute() else self.base / p)
        if not out.get("artifact"):
            raise ValueError("artifact: missing (the candidate's ONNX file)")
        if "thresholds_file" in out and not Path(out["thresholds_file"]).is_file():
            raise ValueError(f"thresholds_file = {body['thresholds_file']!r}: not found")
        precision = body.get("precision", "auto")
        from ..config.schema import PRECISIONS
        if precision not in PRECISIONS:
            raise ValueError(f"precision = {str(precision)[:20]!r}: expected one of {list(PRECISIONS)}")
        out["precision"] = precision
        return out
