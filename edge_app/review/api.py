"""The review routes of the live web app: the page ``/review`` and its JSON API.

- ``GET /api/samples[?run=RUN&stream=NAME]``: the sampled frames (of one run and camera), newest first: a
  JSON list, each with ``id``, ``frame``, ``time``, ``run``, ``stream``, ``reasons`` (why it was sampled),
  ``predicted_boxes``, ``reviewed``
- ``GET /api/samples/<id>``: one sample: size, predictions per model (boxes with class names and scores,
  the mask's URL), the saved review if any
- ``GET /api/samples/<id>/image`` (JPEG), ``GET /api/samples/<id>/mask/<model>`` (class-index PNG)
- ``POST /api/samples/<id>/labels``: ``{"boxes": [{"box": [x0, y0, x1, y1], "class": name}], "masks":
  {model: "accept" | "reject" | {"png": base64}}}`` -> the label files in the inbox, scored at once;
  answers the counts and the rolling numbers. 400 names the field and writes nothing.
- ``GET /api/review``: reviewed / pending counts, the rolling P/R, this run's id and sampled stream, and
  ``facets``: each (run, stream) with samples.

Writes need the token in the ``Authorization`` header when one is set (the server's rule for every write).
"""
from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from ..core.bounded_json import Bounds
from ..serve.web import HttpService, Route
from .samples import ReviewError, SampleStore

log = logging.getLogger("edge_app.review")
PAGE = Path(__file__).with_name("page.html")
LABEL_BYTES = 8 * 2**20  # a review: boxes and maybe painted masks (PNG, base64)


class Review:
    def __init__(self, store: SampleStore, sampler: Any, rolling: Any) -> None:
        """sampler: the app's ``labels.Sampler`` (its ``poll`` scores the inbox); rolling: its RollingMonitor."""
        self.store, self.sampler, self.rolling = store, sampler, rolling
        self.saved = self.refused = 0

    def routes(self) -> dict[str, Route]:
        return {"/review": self._page, "/api/samples": self._list, "/api/samples/": self._sample,
                "/api/review": self._summary}

    def writes(self) -> set[str]:
        return {"/api/samples/"}

    def summary(self) -> dict[str, Any]:
        return {**self.store.counts(), "saved": self.saved, "refused": self.refused,
                "rolling": self.rolling.snapshot(), "run": getattr(self.sampler, "run", ""),
                "stream": getattr(self.sampler, "stream", ""), "facets": self.store.facets()}

    # -- handlers -----------------------------------------------------------------------------------
    def _page(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        HttpService.send_page(req, PAGE)

    def _list(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        try:
            limit = max(1, min(5000, int(query.get("limit", ["200"])[0])))
        except ValueError:
            HttpService.send_json(req, 400, {"error": "limit: expected an integer"})
            return
        run, stream = query.get("run", [None])[0], query.get("stream", [None])[0]
        HttpService.send_json(req, 200, self.store.summary(limit, run=run, stream=stream))

    def _summary(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        HttpService.send_json(req, 200, self.summary())

    def _sample(self, req: BaseHTTPRequestHandler, path: str, query: dict[str, list[str]]) -> None:
        parts = path.split("/")[3:]  # "/api/samples/<id>/..." -> [id, ...]
        try:
            if req.command == "POST" and len(parts) == 2 and parts[1] == "labels":
                self._save(req, parts[0])
            elif req.command != "GET":
                HttpService.send_json(req, 404, {"error": f"{path}: POST /api/samples/<id>/labels is the only write"})
            elif len(parts) == 1:
                HttpService.send_json(req, 200, self.store.record(parts[0]))
            elif len(parts) == 2 and parts[1] == "image":
                HttpService.send(req, 200, self.store.path_of(parts[0], ".jpg").read_bytes(), "image/jpeg")
            elif len(parts) == 3 and parts[1] == "mask":
                png = self.store.path_of(parts[0], f".{_model_name(parts[2])}.png")
                HttpService.send(req, 200, png.read_bytes(), "image/png")
            else:
                HttpService.send_json(req, 404, {"error": f"{path}: expected /api/samples/<id>[/image|/labels|"
                                                          "/mask/<model>]"})
        except ReviewError as exc:
            HttpService.send_json(req, 400, {"error": str(exc)})
        except FileNotFoundError as exc:
            HttpService.send_json(req, 404, {"error": str(exc)})

    def _save(self, req: BaseHTTPRequestHandler, sample_id: str) -> None:
        try:
            # a painted mask is one long base64 string; boxes are bounded by labels.max_boxes after parsing
            body = HttpService.read_json(req, LABEL_BYTES, Bounds(depth=6, string=LABEL_BYTES,
                                                                  items=self.store.max_boxes + 16,
                                                                  total_items=8 * self.store.max_boxes + 64))
            written = self.store.save(sample_id, body)
        except (ReviewError, ValueError) as exc:
            self.refused += 1
            log.warning("review: %s refused: %s", sample_id, exc)
            HttpService.send_json(req, HttpService.error_code(exc), {"error": str(exc)})
            return
        scored = self.sampler.poll() if written else 0  # scored now, not at the pipeline's next poll
        self.saved += 1
        log.info("review: %s saved (%s), %d scored", sample_id, ", ".join(p.name for p in written) or "re-review",
                 scored)
        HttpService.send_json(req, 200, {"id": sample_id, "written": [p.name for p in written], "scored": scored,
                                         **self.summary()})


def _model_name(name: str) -> str:
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ReviewError(f"model {name!r}: expected a model name from the sample")
    return name
