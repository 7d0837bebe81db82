"""The sampled frames as a review queue: list them newest first, read one with its predictions, and save
a person's labels for it.

A sample is what ``labels.Sampler`` saved: ``<id>.jpg`` (the frame), ``<id>.json`` (the models'
predictions), ``<id>.<model>.png`` (a segmenter's class-index mask). Saving a review writes
``<id>.review.json`` (and ``<id>.<model>.label.png`` for a mask label) beside it (what the person said: boxes, "nothing here", masks accepted / rejected /
painted) and the label files into the inbox: ``<id>.xml`` (VOC, exhaustive: a class not boxed is not
there) and ``<id>.<model>.png`` (class-index mask), both atomically; the sampler scores them from there.

Sample ids are checked against the sampler's own pattern and must name a saved sample: no path outside
the samples folder can be named, ever.
"""
from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..core.artifact import write_atomic
from ..datasets.voc import voc_xml

_ID = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
MASK_VERDICTS = ("accept", "reject", "paint")


class ReviewError(ValueError):
    """A request that cannot be saved; the message names the field and what was expected."""


class SampleStore:
    def __init__(self, samples_dir: Path, inbox: Path, max_boxes: int = 1000) -> None:
        """max_boxes: the most boxes one review may carry (``labels.max_boxes``)."""
        self.dir, self.inbox, self.max_boxes = Path(samples_dir), Path(inbox), max_boxes
        self._briefs: dict[str, dict[str, Any]] = {}

    # -- reading ----------------------------------------------------------------------------------
    def path_of(self, sample_id: str, suffix: str) -> Path:
        """The file of a saved sample (``.jpg``, ``.json``, ``.<model>.png``); ReviewError otherwise."""
        if not isinstance(sample_id, str) or not _ID.match(sample_id):
            raise ReviewError(f"sample id {sample_id!r}: expected <milliseconds>-<frame>, as /api/samples lists")
        path = self.dir / f"{sample_id}{suffix}"
        if not (self.dir / f"{sample_id}.json").is_file() or not path.is_file():
            raise FileNotFoundError(f"no sample {sample_id}{suffix} in {self.dir}")
        return path

    def ids(self) -> list[str]:
        """Every saved sample, newest first."""
        found = [p.stem for p in self.dir.glob("*.json") if _ID.match(p.stem)]
        return sorted(found, key=lambda s: tuple(int(x) for x in s.split("-")), reverse=True)

    def record(self, sample_id: str) -> dict[str, Any]:
        """The saved predictions, readable: per model its task, classes, and boxes with class names."""
        rec = json.loads(self.path_of(sample_id, ".json").read_text())
        out: dict[str, Any] = {"id": sample_id, "frame": rec.get("frame"), "source": rec.get("source"),
                               "run": rec.get("run", ""), "stream": rec.get("stream", ""),
                               "size": rec.get("size"), "reasons": rec.get("reasons", ["every"]), "models": {}}
        for name, e in rec.get("models", {}).items():
            m: dict[str, Any] = {"task": e["task"], "classes": e["classes"]}
            if "boxes" in e:
                m["boxes"] = [{"box": [round(v, 1) for v in b], "class": e["classes"][c], "score": round(s, 4)}
                              for b, s, c in zip(e["boxes"], e["scores"], e["labels"])]
            if "mask" in e:
                m["mask"] = f"api/samples/{sample_id}/mask/{name}"
            out["models"][name] = m
        review = self.dir / f"{sample_id}.review.json"
        out["review"] = json.loads(review.read_text()) if review.is_file() else None
        return out

    def summary(self, limit: int = 200, run: str | None = None, stream: str | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` samples (of one ``run`` and ``stream`` when given): id, frame, time, run,
        stream, reasons, reviewed, predicted box count."""
        rows: list[dict[str, Any]] = []
        for sid in self.ids():
            if len(rows) >= limit:
                break
            brief = self._brief(sid)
            if brief is None or (run is not None and brief["run"] != run) or \
                    (stream is not None and brief["stream"] != stream):
                continue
            rows.append({**brief, "reviewed": (self.dir / f"{sid}.review.json").is_file()})
        return rows

    def _brief(self, sid: str) -> dict[str, Any] | None:
        """What the queue shows of a sample, read once (a saved sample's record never changes; the page
        asks every few seconds and a store holds thousands)."""
        brief = self._briefs.get(sid)
        if brief is None:
            try:
                rec = json.loads((self.dir / f"{sid}.json").read_text())
            except (OSError, ValueError):  # removed by the disk cap meanwhile, or half-gone
                return None
            boxes = sum(len(e.get("boxes", [])) for e in rec.get("models", {}).values())
            brief = {"id": sid, "frame": rec.get("frame"), "time": int(sid.split("-")[0]) / 1000,
                     "run": rec.get("run", ""), "stream": rec.get("stream", ""),
                     "reasons": rec.get("reasons", ["every"]), "predicted_boxes": boxes}
            if len(self._briefs) > 100_000:
                self._briefs.clear()
            self._briefs[sid] = brief
        return brief

    def facets(self) -> list[dict[str, Any]]:
        """Each (run, stream) that has samples, newest run first, with its sample and reviewed counts."""
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for sid in self.ids():
            brief = self._brief(sid)
            if brief is None:
                continue
            key = (brief["run"], brief["stream"])
            f = seen.setdefault(key, {"run": key[0], "stream": key[1], "samples": 0, "reviewed": 0})
            f["samples"] += 1
            f["reviewed"] += (self.dir / f"{sid}.review.json").is_file()
        return list(seen.values())

    def counts(self) -> dict[str, int]:
        ids = self.ids()
        reviewed = sum((self.dir / f"{s}.review.json").is_file() for s in ids)
        return {"samples": len(ids), "reviewed": reviewed, "pending": len(ids) - reviewed}

    # -- saving -----------------------------------------------------------------------------------
    def save(self, sample_id: str, body: Any) -> list[Path]:
        """Check a review (``{"boxes": [{"box": [x0, y0, x1, y1], "class": name}], "masks": {model:
        "accept" | "reject" | {"png": base64 class-index PNG}}}``) and write it; returns the inbox files.
        ReviewError names the field; nothing is written then. A sample reviewed before gets its review
        replaced but no inbox file (it was scored once)."""
        rec = json.loads(self.path_of(sample_id, ".json").read_text())
        if not isinstance(body, dict):
            raise ReviewError("body: expected a JSON object with \"boxes\" (and optionally \"masks\")")
        unknown = set(body) - {"boxes", "masks", "nothing"}
        if unknown:
            raise ReviewError(f"{sorted(unknown)[0]}: unknown field (expected boxes, masks, nothing)")
        width, height = (int(v) for v in rec["size"])
        detectors = {n: e for n, e in rec["models"].items() if e["task"] == "detection"}
        names = sorted({c for e in detectors.values() for c in e["classes"]})
        raw = body.get("boxes", [])
        if isinstance(raw, list) and len(raw) > self.max_boxes:
            raise ReviewError(f"boxes: {len(raw)} boxes, at most {self.max_boxes} (labels.max_boxes)")
        boxes = self._boxes(raw, names, width, height)
        if body.get("nothing") and boxes:
            raise ReviewError("nothing: true with boxes; send one or the other")
        masks = self._masks(body.get("masks", {}), rec, sample_id, width, height)
        written: list[Path] = []
        again = (self.dir / f"{sample_id}.review.json").is_file()
        self.inbox.mkdir(parents=True, exist_ok=True)
        if again:
            # Corrected again: the newest review is what export and calibrate use, but the frame was scored
            # once already, and the rolling window must not count it twice.
            masks, detectors = {}, {}
        if detectors and ("boxes" in body or body.get("nothing")):
            xml = self.inbox / f"{sample_id}.xml"
            write_atomic(xml, voc_xml(f"{sample_id}.jpg", width, height, [(b["class"], b["box"]) for b in boxes]))
            written.append(xml)
        for model, mask in masks.items():
            if mask is None:  # rejected without a painted replacement: not a label, nothing to score
                continue
            ok, data = cv2.imencode(".png", mask)
            # kept beside the sample for export; the inbox copy is scored and moved to done/
            write_atomic(self.dir / f"{sample_id}.{model}.label.png", data.tobytes())
            png = self.inbox / f"{sample_id}.{model}.png"
            write_atomic(png, data.tobytes())
            written.append(png)
        review = {"boxes": boxes, "nothing": bool(body.get("nothing")) or ("boxes" in body and not boxes),
                  "masks": {m: ("painted" if isinstance(v, dict) else v) for m, v in body.get("masks", {}).items()},
                  "time": time.time()}
        write_atomic(self.dir / f"{sample_id}.review.json", json.dumps(review))
        return written

    @staticmethod
    def _boxes(raw: Any, names: list[str], width: int, height: int) -> list[dict[str, Any]]:
        if not isinstance(raw, list):
            raise ReviewError("boxes: expected a list of {\"box\": [x0, y0, x1, y1], \"class\": name}")
        out = []
        for i, b in enumerate(raw):
            where = f"boxes[{i}]"
            if not isinstance(b, dict) or "box" not in b or "class" not in b:
                raise ReviewError(f"{where}: expected {{\"box\": [x0, y0, x1, y1], \"class\": name}}")
            box = b["box"]
            if (not isinstance(box, list) or len(box) != 4
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
                raise ReviewError(f"{where}.box: expected four numbers [x0, y0, x1, y1] in pixels")
            x0, y0, x1, y1 = (float(v) for v in box)
            if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
                raise ReviewError(f"{where}.box {box}: expected 0 <= x0 < x1 <= {width}, 0 <= y0 < y1 <= {height}")
            if b["class"] not in names:
                raise ReviewError(f"{where}.class {b['class']!r}: expected one of {names}")
            out.append({"box": [x0, y0, x1, y1], "class": b["class"]})
        return out

    def _masks(self, raw: Any, rec: dict[str, Any], sample_id: str, width: int,
               height: int) -> dict[str, np.ndarray | None]:
        if not isinstance(raw, dict):
            raise ReviewError("masks: expected {model: \"accept\" | \"reject\" | {\"png\": base64}}")
        out: dict[str, np.ndarray | None] = {}
        for model, verdict in raw.items():
            e = rec["models"].get(model)
            if e is None or e["task"] != "segmentation":
                segs = [n for n, m in rec["models"].items() if m["task"] == "segmentation"]
                raise ReviewError(f"masks.{model}: not a segmenter of this sample (expected one of {segs})")
            if verdict == "accept":
                out[model] = cv2.imread(str(self.path_of(sample_id, f".{model}.png")), cv2.IMREAD_UNCHANGED)
            elif verdict == "reject":
                out[model] = None
            elif isinstance(verdict, dict) and isinstance(verdict.get("png"), str):
                try:
                    data = np.frombuffer(base64.b64decode(verdict["png"], validate=True), np.uint8)
                except ValueError:
                    raise ReviewError(f"masks.{model}.png: not base64") from None
                mask = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
                if mask is not None and mask.ndim == 3 and mask.shape[2] in (3, 4):
                    # a browser canvas writes RGBA: the class index in each colour channel
                    if not ((mask[..., 0] == mask[..., 1]) & (mask[..., 1] == mask[..., 2])).all():
                        raise ReviewError(f"masks.{model}.png: colour channels differ; expected a class index "
                                          "per pixel (gray, or R = G = B)")
                    mask = mask[..., 0]
                if mask is None or mask.ndim != 2 or mask.shape != (height, width):
                    raise ReviewError(f"masks.{model}.png: expected a single-channel {width}x{height} class-index PNG")
                bad = (mask >= len(e["classes"])) & (mask != 255)
                if bad.any():
                    raise ReviewError(f"masks.{model}.png: class index {int(mask[bad].max())} beyond the model's "
                                      f"{len(e['classes'])} classes (255 = ignore)")
                out[model] = mask.astype(np.uint8)
            else:
                raise ReviewError(f"masks.{model}: expected \"accept\", \"reject\" or {{\"png\": base64}}")
        return out
