"""Segmentation folders: images plus single-channel class-index PNG masks with the same file stem."""
from __future__ import annotations

from pathlib import Path

from .base import Dataset, DatasetError, LabelIssues, Sample, read_class_names
from .voc import IMAGE_SUFFIXES


def read_masks(images_dir: Path, masks_dir: Path, *, classes: tuple[str, ...] | None = None,
               classes_file: Path | None = None, ignore_index: int | None = None) -> Dataset:
    """List image/mask pairs matched by file stem.

    Class names come from ``classes``, else ``classes_file`` (which may also mark the ignore index),
    else a binary ("background", "foreground"). Images without a mask are counted and skipped.
    """
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for d in (images_dir, masks_dir):
        if not d.is_dir():
            raise DatasetError(f"{d}: folder not found")
    file_ignore = None
    if classes is None and classes_file is not None:
        classes, file_ignore = read_class_names(Path(classes_file))
    if classes is None:
        classes = ("background", "foreground")
    if ignore_index is None:
        ignore_index = file_ignore
    masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() == ".png"}
    issues = LabelIssues()
    samples: list[Sample] = []
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    for image in images:
        mask = masks.get(image.stem)
        if mask is None:
            issues.add("image without a mask (skipped)", str(image))
            continue
        samples.append(Sample(len(samples), image, mask_path=mask))
    if not samples:
        raise DatasetError(f"{images_dir}: no image has a mask in {masks_dir}")
    # The ignore class is not a class to predict: keep its name out of the class list when it is last.
    if ignore_index is not None and ignore_index == len(classes) - 1:
        classes = classes[:-1]
    return Dataset(samples, tuple(classes), "segmentation", issues, ignore_index=ignore_index,
                   root=images_dir.parent)
