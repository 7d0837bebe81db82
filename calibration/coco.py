"""COCO evaluation of result files from any tool, and of our own runs, with the full COCO protocol.

faster-coco-eval (same numbers as pycocotools, several times faster) when installed, else pycocotools,
else the core's own COCO implementation (equal to pycocotools to 1e-6, tested). The ``evaluate``
subcommand prints one JSON object: AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100 and per-class AP.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.core.detection_metrics import COCO_STAT_NAMES, DetectionMetrics
from edge_app.datasets.coco import load_json

from .evaluate import DetectionRun
from edge_app.cli.errors import fail

KEYS = COCO_STAT_NAMES[:9]


class CocoFileError(Exception):
    pass


def validate_results(dets: Any, path: Path, image_ids: set[int], cat_ids: set[int]) -> list[dict[str, Any]]:
    """Check a results list entry by entry; errors name the file and the entry."""
    if not isinstance(dets, list):
        raise CocoFileError(f"{path}: expected a JSON list of detections, got {type(dets).__name__}")
    for i, d in enumerate(dets):
        where = f"{path}: entry {i}"
        if not isinstance(d, dict):
            raise CocoFileError(f"{where}: expected an object")
        for key in ("image_id", "category_id", "bbox", "score"):
            if key not in d:
                raise CocoFileError(f"{where}: missing '{key}'")
        bbox = d["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
            raise CocoFileError(f"{where}: bbox must be [x, y, width, height] numbers, got {bbox!r}")
        if not isinstance(d["score"], (int, float)) or not np.isfinite(d["score"]):
            raise CocoFileError(f"{where}: score must be a finite number, got {d['score']!r}")
        if d["image_id"] not in image_ids:
            raise CocoFileError(f"{where}: image_id {d['image_id']!r} is not in the ground truth")
        if d["category_id"] not in cat_ids:
            raise CocoFileError(f"{where}: category_id {d['category_id']!r} is not in the ground truth")
    return dets


def validate_gt(gt: Any, path: Path) -> dict[str, Any]:
    if not isinstance(gt, dict):
        raise CocoFileError(f"{path}: expected a COCO object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            raise CocoFileError(f"{path}: missing or non-list '{key}'")
    for i, a in enumerate(gt["annotations"]):
        for key in ("id", "image_id", "category_id", "bbox"):
            if not isinstance(a, dict) or key not in a:
                raise CocoFileError(f"{path}: annotations[{i}]: missing '{key}'")
        a.setdefault("iscrowd", 0)
        a.setdefault("area", float(a["bbox"][2]) * float(a["bbox"][3]))
    for i, img in enumerate(gt["images"]):
        if not isinstance(img, dict) or "id" not in img:
            raise CocoFileError(f"{path}: images[{i}]: missing 'id'")
    return gt


def backend_name() -> str:
    for name in ("faster_coco_eval", "pycocotools"):
        try:
            __import__(name)
            return name
        except ImportError:
            continue
    return "edge_app.core"


def coco_stats(gt: dict[str, Any], dets: list[dict[str, Any]], backend: str | None = None) -> dict[str, Any]:
    """{'stats': 12 numbers, 'per_class': {name: AP}, 'backend': name} for bbox evaluation."""
    backend = backend or backend_name()
    cats = sorted(gt["categories"], key=lambda c: c["id"])
    if backend == "edge_app.core" or not dets:
        return _core_stats(gt, dets, cats)
    if backend == "faster_coco_eval":
        from faster_coco_eval import COCO, COCOeval_faster as COCOeval
    else:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = json.loads(json.dumps(gt))  # the evaluators annotate the dict in place
        coco.createIndex()
        res = coco.loadRes(json.loads(json.dumps(dets)))
        ev = COCOeval(coco, res, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = np.asarray(ev.eval["precision"])[:, :, :, 0, -1]
    per_class = {}
    for k, c in enumerate(cats):
        v = prec[:, :, k]
        per_class[c["name"]] = float(v[v > -1].mean()) if (v > -1).any() else None
    return {"stats": [float(s) for s in ev.stats[:12]], "per_class": per_class, "backend": backend}


def _core_stats(gt: dict[str, Any], dets: list[dict[str, Any]], cats: list[dict[str, Any]]) -> dict[str, Any]:
    index = {c["id"]: i for i, c in enumerate(cats)}
    m = DetectionMetrics(len(cats))
    by_img: dict[Any, list] = {}
    for a in gt["annotations"]:
        by_img.setdefault(a["image_id"], []).append(a)
    d_img: dict[Any, list] = {}
    for d in dets:
        d_img.setdefault(d["image_id"], []).append(d)
    for img in sorted(gt["images"], key=lambda i: i["id"]):
        g, found = by_img.get(img["id"], []), d_img.get(img["id"], [])
        m.update_xywh(np.array([x["bbox"] for x in found], np.float64).reshape(-1, 4),
                      np.array([x["score"] for x in found]),
                      np.array([index[x["category_id"]] for x in found], np.int64),
                      np.array([x["bbox"] for x in g], np.float64).reshape(-1, 4),
                      np.array([index[x["category_id"]] for x in g], np.int64),
                      np.array([bool(x.get("iscrowd", 0)) for x in g]), np.zeros(len(g), bool),
                      np.array([x["area"] for x in g], np.float64))
    r = m.compute()
    return {"stats": [float(s) for s in r.stats], "backend": "edge_app.core",
            "per_class": {c["name"]: (None if np.isnan(v) else float(v)) for c, v in zip(cats, r.ap)}}


def run_to_coco(run: DetectionRun) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A DetectionRun (our model on a dataset) as COCO ground truth + results, for the full protocol."""
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    dets: list[dict[str, Any]] = []
    # VOC "difficult" objects become iscrowd regions: matched detections are not counted either way.
    for img_id, det, gt in zip(run.image_ids, run.detections, run.truths):
        images.append({"id": int(img_id)})
        for box, cls, crowd, ign, area in zip(gt.boxes.tolist(), gt.classes.tolist(), gt.crowd.tolist(),
                                              gt.ignore.tolist(), gt.area.tolist()):
            anns.append({"id": len(anns) + 1, "image_id": int(img_id), "category_id": int(cls) + 1,
                         "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "area": float(area),
                         "iscrowd": int(crowd or ign)})
        for box, score, cls in zip(det.boxes.tolist(), det.scores.tolist(), det.classes.tolist()):
            dets.append({"image_id": int(img_id), "category_id": int(cls) + 1,
                         "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "score": float(score)})
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(run.classes)]
    return {"images": images, "annotations": anns, "categories": cats}, dets


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edge-app evaluate", description=__doc__)
    p.add_argument("--gt", required=True, type=Path, help="COCO instances JSON (ground truth)")
    p.add_argument("--detections", required=True, type=Path, help="COCO results JSON (a list of detections)")
    p.add_argument("--backend", choices=("faster_coco_eval", "pycocotools", "edge_app.core"))
    a = p.parse_args(argv)
    try:
        from edge_app.datasets import DatasetError
        try:
            gt = validate_gt(load_json(a.gt), a.gt)
            raw = load_json(a.detections)
        except DatasetError as exc:
            raise CocoFileError(str(exc)) from None
        dets = validate_results(raw, a.detections, {i["id"] for i in gt["images"]},
                                {c["id"] for c in gt["categories"]})
        result = coco_stats(gt, dets, a.backend)
    except CocoFileError as exc:
        return fail("evaluate", f"{exc}")
    out = dict(zip(KEYS, result["stats"][:9]))
    out["per_class"] = result["per_class"]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
