"""COCO instances JSON: images, annotations (bbox xywh, iscrowd, area), categories."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..core.types import GroundTruth
from .base import Dataset, DatasetError, LabelIssues, Sample, sanitize_boxes


def load_json(path: Path) -> Any:
    try:
        with open(path) as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


def _require(entry: Any, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(entry, dict):
        raise DatasetError(f"{where}: expected an object, got {type(entry).__name__}")
    missing = [k for k in keys if k not in entry]
    if missing:
        raise DatasetError(f"{where}: missing {', '.join(missing)}")


def read_coco(json_path: Path, images_dir: Path | None = None) -> Dataset:
    """List a COCO dataset. Classes are the categories sorted by id; ``Dataset.category_ids`` maps back.

    images_dir: where ``file_name`` lives (default: the JSON's folder, then its ``images/``).
    Malformed top-level structure is a DatasetError naming the file and entry; bad boxes are counted.
    """
    json_path = Path(json_path)
    data = load_json(json_path)
    _require(data, ("images", "annotations", "categories"), str(json_path))
    for i, c in enumerate(data["categories"]):
        _require(c, ("id", "name"), f"{json_path}: categories[{i}]")
    cats = sorted(data["categories"], key=lambda c: c["id"])
    index = {c["id"]: i for i, c in enumerate(cats)}
    if images_dir is None:
        images_dir = json_path.parent / "images" if (json_path.parent / "images").is_dir() else json_path.parent
    issues = LabelIssues()
    by_image: dict[int, list[dict]] = {}
    for i, a in enumerate(data["annotations"]):
        _require(a, ("image_id", "category_id", "bbox"), f"{json_path}: annotations[{i}]")
        by_image.setdefault(a["image_id"], []).append(a)
    samples = []
    for i, img in enumerate(data["images"]):
        _require(img, ("id",), f"{json_path}: images[{i}]")
        anns = by_image.get(img["id"], [])
        where = f"{json_path}: image {img['id']}"
        good = []
        for a in anns:
            bbox = a["bbox"]
            if (not isinstance(bbox, list) or len(bbox) != 4
                    or not all(isinstance(v, (int, float)) for v in bbox)):
                issues.add("malformed bbox (dropped)", f"{where} annotation {a.get('id')}")
                continue
            if a["category_id"] not in index:
                issues.add("unknown category (dropped)", f"{where} annotation {a.get('id')}")
                continue
            good.append(a)
        xywh = np.array([a["bbox"] for a in good], np.float64).reshape(-1, 4)
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)
        size = (int(img["width"]), int(img["height"])) if "width" in img and "height" in img else None
        boxes, keep = sanitize_boxes(xyxy, size, where, issues)
        area = np.array([a.get("area", w * h) for a, (_, _, w, h) in zip(good, xywh)], np.float64)
        truth = GroundTruth(boxes[keep], np.array([index[a["category_id"]] for a in good], np.int64)[keep],
                            crowd=np.array([bool(a.get("iscrowd", 0)) for a in good], bool)[keep],
                            area=area[keep])
        path = Path(images_dir) / img["file_name"] if "file_name" in img else Path(images_dir) / str(img["id"])
        samples.append(Sample(int(img["id"]), path, truth=truth, size=size))
    return Dataset(samples, tuple(c["name"] for c in cats), "detection", issues, root=json_path.parent,
                   category_ids=tuple(c["id"] for c in cats))
