"""Pascal VOC XML: an images folder, an annotations folder (one XML per image), an optional split.

The split is a VOC ImageSets text file (one image id per line) or a CSV with a ``filename`` column (as
the raccoon set's ``splits/*.csv``).
"""
from __future__ import annotations

import csv
from collections.abc import Sequence
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..core.types import GroundTruth
from .base import Dataset, DatasetError, LabelIssues, Sample, sanitize_boxes

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def parse_voc_xml(path: Path) -> tuple[str | None, tuple[int, int] | None, list[tuple[str, list[float], bool]]]:
    """(filename, (width, height) or None, [(class name, [x1, y1, x2, y2], difficult)]).

    Raises DatasetError naming the file for unreadable XML or a malformed object.
    """
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DatasetError(f"{path}: unreadable VOC XML ({exc})") from None
    filename = root.findtext("filename")
    size = None
    size_el = root.find("size")
    if size_el is not None:
        try:
            size = (int(float(size_el.findtext("width", "0"))), int(float(size_el.findtext("height", "0"))))
        except ValueError:
            raise DatasetError(f"{path}: <size> is not numeric") from None
        if size[0] <= 0 or size[1] <= 0:
            size = None
    objects = []
    for i, obj in enumerate(root.iter("object")):
        name = (obj.findtext("name") or "").strip()
        box = obj.find("bndbox")
        if not name or box is None:
            raise DatasetError(f"{path}: object {i} has no <name> or <bndbox>")
        try:
            coords = [float(box.findtext(k, "nan")) for k in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError:
            raise DatasetError(f"{path}: object {i} ({name}) has a non-numeric box") from None
        if any(np.isnan(coords)):
            raise DatasetError(f"{path}: object {i} ({name}) lacks a box coordinate")
        difficult = (obj.findtext("difficult") or "0").strip() == "1"
        objects.append((name, coords, difficult))
    return filename, size, objects


def voc_xml(filename: str, width: int, height: int, objects: Sequence[tuple[str, Sequence[float]]]) -> str:
    """One VOC annotation: objects are (class name, [x1, y1, x2, y2] px); what ``parse_voc_xml`` reads."""
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    for key, n in (("width", width), ("height", height), ("depth", 3)):
        ET.SubElement(size, key).text = str(int(n))
    for name, box in objects:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = name
        ET.SubElement(obj, "difficult").text = "0"
        bnd = ET.SubElement(obj, "bndbox")
        for key, v in zip(("xmin", "ymin", "xmax", "ymax"), box):
            ET.SubElement(bnd, key).text = f"{float(v):.1f}"
    return ET.tostring(root, encoding="unicode") + "\n"


def _split_names(split: Path) -> set[str]:
    if not split.is_file():
        raise DatasetError(f"{split}: split file not found")
    if split.suffix.lower() == ".csv":
        with open(split, newline="") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "filename" not in reader.fieldnames:
                raise DatasetError(f"{split}: expected a CSV with a 'filename' column")
            return {Path(row["filename"]).stem for row in reader}
    return {line.split()[0] for line in split.read_text().splitlines() if line.strip()}


def read_voc(root: Path, *, images: str = "images", annotations: str = "annotations",
             split: Path | None = None, classes: tuple[str, ...] | None = None) -> Dataset:
    """List a VOC dataset. Class names come from ``classes`` or, sorted, from the XML files.

    Bad labels are counted in ``Dataset.issues`` (unreadable XML, missing image, boxes clipped or
    dropped, unknown classes) and the affected object or image is skipped, never silently.
    """
    root = Path(root)
    img_dir, ann_dir = root / images, root / annotations
    if not ann_dir.is_dir():
        # VOCdevkit layout: JPEGImages + Annotations
        img_dir, ann_dir = root / "JPEGImages", root / "Annotations"
    if not ann_dir.is_dir():
        raise DatasetError(f"{root}: expected an '{annotations}/' (or 'Annotations/') folder of VOC XML")
    wanted = _split_names(split) if split is not None else None
    issues = LabelIssues()
    parsed = []
    for xml in sorted(ann_dir.glob("*.xml")):
        if wanted is not None and xml.stem not in wanted:
            continue
        try:
            filename, size, objects = parse_voc_xml(xml)
        except DatasetError as exc:
            issues.add("unreadable annotation (image skipped)", str(exc))
            continue
        image = _find_image(img_dir, filename, xml.stem)
        if image is None:
            issues.add("image missing for annotation (skipped)", str(xml))
            continue
        parsed.append((xml, image, size, objects))
    if wanted is not None and len(parsed) < len(wanted):
        for name in sorted(wanted - {p[0].stem for p in parsed})[:50]:
            issues.add("split entry without a usable annotation", name)
    names = classes or tuple(sorted({o[0] for _, _, _, objs in parsed for o in objs}))
    index = {n: i for i, n in enumerate(names)}
    samples = []
    for image_id, (xml, image, size, objects) in enumerate(parsed):
        known = [o for o in objects if o[0] in index]
        for name, _, _ in objects:
            if name not in index:
                issues.add(f"unknown class '{name}' (object dropped)", str(xml))
        boxes, keep = sanitize_boxes(np.array([o[1] for o in known], np.float32), size, str(xml), issues)
        truth = GroundTruth(boxes[keep], np.array([index[o[0]] for o in known], np.int64)[keep],
                            ignore=np.array([o[2] for o in known], bool)[keep])
        samples.append(Sample(image_id, image, truth=truth, size=size))
    return Dataset(samples, tuple(names), "detection", issues, root=root)


def _find_image(img_dir: Path, filename: str | None, stem: str) -> Path | None:
    if filename:
        p = img_dir / Path(filename).name
        if p.is_file():
            return p
    for suffix in IMAGE_SUFFIXES:
        p = img_dir / f"{stem}{suffix}"
        if p.is_file():
            return p
    return None
