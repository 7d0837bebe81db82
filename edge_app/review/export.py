"""Reviewed samples as a dataset that ``edge-app calibrate --data`` and ``edge-app train --data`` read:

- VOC: ``OUT/images/<id>.jpg`` + ``OUT/annotations/<id>.xml`` (``--data OUT``)
- COCO: ``OUT/images/<id>.jpg`` + ``OUT/annotations.json`` (``--data OUT/annotations.json``)

and, where a segmenter's mask was accepted or painted, ``OUT/masks/<id>.png`` (class-index) with
``OUT/classes.txt``: the images/ + masks/ layout (``--data OUT --task segmentation``). A frame marked
"nothing here" is an image without boxes. Written into a temporary folder and renamed: OUT is complete or
absent, and an existing, non-empty OUT is never touched.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..datasets.voc import voc_xml
from .samples import SampleStore

FORMATS = ("voc", "coco")


def export(samples_dir: Path, out: Path, fmt: str = "voc") -> dict[str, Any]:
    """Write the reviewed samples of ``samples_dir`` to ``out``; returns what was written (counts)."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: expected one of {FORMATS}")
    samples_dir, out = Path(samples_dir), Path(out)
    store = SampleStore(samples_dir, samples_dir)  # reads only: no inbox is written
    reviewed = [sid for sid in reversed(store.ids()) if (samples_dir / f"{sid}.review.json").is_file()]
    if not reviewed:
        raise ValueError(f"{samples_dir}: no reviewed samples (label some on the /review page first)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out}: exists and is not an empty folder; choose a new one")
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "images").mkdir(parents=True)
    classes: list[str] = []
    seg_classes: list[str] | None = None
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    boxes_total = masks = 0
    try:
        for sid in reviewed:
            rec = store.record(sid)
            review = rec["review"]
            width, height = rec["size"]
            for m in rec["models"].values():
                if m["task"] == "detection":
                    classes += [c for c in m["classes"] if c not in classes]
            shutil.copyfile(store.path_of(sid, ".jpg"), tmp / "images" / f"{sid}.jpg")
            boxes = [(b["class"], b["box"]) for b in review["boxes"]]
            boxes_total += len(boxes)
            images.append({"id": len(images) + 1, "file_name": f"{sid}.jpg", "width": width, "height": height})
            if fmt == "voc":
                (tmp / "annotations").mkdir(exist_ok=True)
                (tmp / "annotations" / f"{sid}.xml").write_text(voc_xml(f"{sid}.jpg", width, height, boxes))
            else:
                annotations += [{"id": len(annotations) + k + 1, "image_id": images[-1]["id"], "category_id": 0,
                                 "class": name, "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                                 "iscrowd": 0} for k, (name, (x0, y0, x1, y1)) in enumerate(boxes)]
            for name, m in rec["models"].items():  # the first segmenter with a mask label
                label = samples_dir / f"{sid}.{name}.label.png"
                if m["task"] == "segmentation" and label.is_file() and seg_classes in (None, m["classes"]):
                    seg_classes = m["classes"]
                    (tmp / "masks").mkdir(exist_ok=True)
                    shutil.copyfile(label, tmp / "masks" / f"{sid}.png")
                    masks += 1
                    break
        if fmt == "coco":
            ids = {c: i + 1 for i, c in enumerate(classes)}
            for a in annotations:
                a["category_id"] = ids[a.pop("class")]
            doc = {"images": images, "annotations": annotations,
                   "categories": [{"id": i, "name": c} for c, i in ids.items()]}
            (tmp / "annotations.json").write_text(json.dumps(doc))
        if seg_classes is not None:
            (tmp / "classes.txt").write_text("\n".join(seg_classes) + "\n")
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    data = out / "annotations.json" if fmt == "coco" else out
    return {"format": fmt, "out": str(out), "samples": len(reviewed), "boxes": boxes_total, "masks": masks,
            "classes": classes, "data": str(data)}
