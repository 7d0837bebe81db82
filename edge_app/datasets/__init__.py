"""Torch-free label readers (VOC XML, COCO JSON, mask folders) and a layout-detecting opener.

``open_dataset(path)`` recognises:
  - ``x.json``                                  COCO instances (images next to it or in images/)
  - a folder with ``seqinfo.ini`` + ``gt/gt.txt`` + ``img1/``   a MOTChallenge sequence (with identities)
  - a folder with ``annotations/`` (or VOC's ``Annotations/``) of XML    Pascal VOC
  - a folder with ``image/`` + ``label/``       masks (the ISBI layout)
  - a folder ``NAME`` beside ``NAMEannot``      masks (the CamVid layout; classes.txt beside)
  - a folder with ``images/`` + ``masks/``      masks
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .base import Dataset, DatasetError, LabelIssues, Sample, holdout, load_image, load_mask, read_class_names
from .coco import read_coco
from .masks import read_masks
from .voc import read_voc

__all__ = ["Dataset", "DatasetError", "LabelIssues", "Sample", "holdout", "load_image", "load_mask", "open_dataset",
           "read_class_names", "read_coco", "read_masks", "read_voc", "validation_of", "artifact_validation"]


def _classes_file(*folders: Path) -> Path | None:
    for folder in folders:
        for name in ("classes.txt", "labels.txt"):
            if (folder / name).is_file():
                return folder / name
    return None


def _coco(p: Path, split: Path | None) -> Dataset | None:
    return read_coco(p) if p.is_file() and p.suffix.lower() == ".json" else None


def _mot(p: Path, split: Path | None) -> Dataset | None:
    from .mot import is_mot_sequence, read_mot_sequence
    return read_mot_sequence(p) if p.is_dir() and is_mot_sequence(p) else None


def _voc(p: Path, split: Path | None) -> Dataset | None:
    if (p / "annotations").is_dir() or (p / "Annotations").is_dir():
        return read_voc(p, split=split)
    return None


def _isbi(p: Path, split: Path | None) -> Dataset | None:
    if (p / "image").is_dir() and (p / "label").is_dir():
        return read_masks(p / "image", p / "label", classes_file=_classes_file(p, p.parent))
    return None


def _camvid(p: Path, split: Path | None) -> Dataset | None:
    annot = p.parent / f"{p.name}annot"
    if p.is_dir() and annot.is_dir():
        return read_masks(p, annot, classes_file=_classes_file(p.parent, p))
    return None


def _images_masks(p: Path, split: Path | None) -> Dataset | None:
    if (p / "images").is_dir() and (p / "masks").is_dir():
        return read_masks(p / "images", p / "masks", classes_file=_classes_file(p))
    return None


_OPENERS: tuple[Callable[[Path, Path | None], Dataset | None], ...] = (
    _coco, _mot, _voc, _isbi, _camvid, _images_masks)


_SEGMENTATION = (_isbi, _camvid, _images_masks)


def open_dataset(path: str | Path, split: str | Path | None = None, task: str | None = None) -> Dataset:
    """Open a labelled dataset by recognising its layout (see the module docstring).

    task: "segmentation" prefers mask layouts where a folder holds both (e.g. written synthetic data),
    "detection" box layouts; None takes the first layout that matches.
    """
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{p}: not found")
    openers = _OPENERS
    if task == "segmentation":
        openers = _SEGMENTATION + tuple(o for o in _OPENERS if o not in _SEGMENTATION)
    for opener in openers:
        ds = opener(p, Path(split) if split else None)
        if ds is not None:
            return ds
    raise DatasetError(f"{p}: not a recognised dataset layout (COCO .json; VOC annotations/; image/+label/; "
                       "NAME/+NAMEannot/; images/+masks/)")


def validation_of(training: dict, task: str | None = None, classes: tuple[str, ...] | None = None) -> Dataset | None:
    """The validation data a model was trained with, from its recorded training config: a separate
    dataset (val_data, val_split) or the seeded hold-out of its training data (val_fraction, seed).
    ``classes``: the model's classes; the data's ids are matched to them by name (``with_classes``)."""
    names = classes or (tuple(training["classes"]) if training.get("classes") else None)
    ds: Dataset | None = None
    if training.get("val_data"):
        ds = open_dataset(training["val_data"], training.get("val_split"), task=task)
    elif training.get("val_fraction") and training.get("data") not in (None, "synthetic"):
        full = open_dataset(training["data"], training.get("split"), task=task)
        if names:
            full = full.with_classes(names)
        ds = holdout(full, float(training["val_fraction"]), int(training.get("seed", 0)))[1]
    if ds is not None and names:
        ds = ds.with_classes(names)
    return ds


def artifact_validation(meta: Any, data: str | Path | None = None, split: str | Path | None = None) -> Dataset | None:
    """The labelled data an artifact is judged on (build's gate, calibrate): ``data`` when given (its own
    class names, so it covers what it names); else the data its training validated on, in the model's
    classes: the seeded synthetic hold-out, a separate validation set or the hold-out of its training
    data. None when the artifact records none."""
    if data:
        return open_dataset(data, split, task=meta.task)
    cfg = meta.extra.get("training", {}).get("config", {}) or {}
    if cfg.get("data") == "synthetic":
        from .synthetic import validation_dir
        root = validation_dir(cfg, meta.input_size[1], meta.input_size[0])
        return open_dataset(root, task=meta.task).with_classes(tuple(meta.classes))
    return validation_of(cfg, meta.task, tuple(meta.classes))
