"""MOTChallenge sequences as datasets: ``seqinfo.ini`` + ``img1/`` frames + ``gt/gt.txt``, played by the
replay source with the objects' identities (``Sample.ids``), so the live window scores tracking too.

The MOTChallenge rules for what is scored: MOT16/17 ground truth rows of class 1 (pedestrian) with conf
!= 0 are objects; rows of the distractor classes (person on vehicle, static person, distractor,
reflection) are ignore regions (a detection there counts neither way); the rest are dropped. MOT15 rows
(no classes) are objects unless their conf is 0.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .motchallenge import MotFormatError, image_path, read_mot, read_seqinfo
from ..core.types import GroundTruth
from .base import Dataset, DatasetError, LabelIssues, Sample

DISTRACTORS = (2, 7, 8, 12)
CLASSES = ("pedestrian",)


def is_mot_sequence(root: Path) -> bool:
    return (root / "seqinfo.ini").is_file() and (root / "gt" / "gt.txt").is_file()


def read_mot_sequence(root: Path) -> Dataset:
    root = Path(root)
    try:
        info = read_seqinfo(root / "seqinfo.ini")
        gt = read_mot(root / "gt" / "gt.txt", min_columns=7)
    except MotFormatError as exc:
        raise DatasetError(str(exc)) from None
    issues = LabelIssues()
    mot17 = gt.extra.shape[1] == 2  # frame, id, box, conf, class, visibility
    cls = gt.extra[:, 0].astype(np.int64) if mot17 else np.ones(len(gt.frames), np.int64)
    scored = (gt.conf != 0) & (cls == 1)
    ignored = np.isin(cls, DISTRACTORS) if mot17 else np.zeros(len(cls), bool)
    samples = []
    folder = root / "img1"
    for f in range(1, info.length + 1):
        image = image_path(folder, f, info.image_ext)
        if not image.is_file():
            issues.add("frame without an image (skipped)", str(image))
            continue
        rows = (gt.frames == f) & (scored | ignored)
        xywh = gt.boxes[rows]
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        truth = GroundTruth(boxes, np.zeros(int(rows.sum()), np.int64), ignore=ignored[rows])
        samples.append(Sample(f, image, truth=truth, size=(info.width, info.height), ids=gt.ids[rows]))
    if not samples:
        raise DatasetError(f"{root}: no frame of {info.length} has an image in {folder}")
    return Dataset(samples, CLASSES, "detection", issues, root=root)
