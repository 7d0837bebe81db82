"""Small numpy result types shared by the runtime, calibration and conversion.

Boxes are always absolute pixel coordinates in ``xyxy`` order (x1, y1, x2, y2), float32.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _as(a: object, dtype: type, shape_tail: tuple[int, ...], name: str) -> np.ndarray:
    arr: np.ndarray = np.asarray(a, dtype=dtype)
    if arr.size == 0:
        arr = arr.reshape((0,) + shape_tail)
    if arr.ndim != 1 + len(shape_tail) or arr.shape[1:] != shape_tail:
        raise ValueError(f"{name}: expected shape (N, {', '.join(map(str, shape_tail))}) "
                         f"got {arr.shape}".replace(", )", ")"))
    return arr


@dataclass(frozen=True)
class Detections:
    """Detections of one image.

    boxes: (N, 4) float32 xyxy pixels; scores: (N,) float32; classes: (N,) int64 class indices.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def __post_init__(self) -> None:
        boxes = _as(self.boxes, np.float32, (4,), "Detections.boxes")
        scores = _as(self.scores, np.float32, (), "Detections.scores")
        classes = _as(self.classes, np.int64, (), "Detections.classes")
        if not (len(boxes) == len(scores) == len(classes)):
            raise ValueError(f"Detections: lengths differ: boxes {len(boxes)}, scores {len(scores)}, "
                             f"classes {len(classes)}")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "classes", classes)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))

    def select(self, index: np.ndarray) -> "Detections":
        """Subset by a boolean mask or an index array (order kept as given)."""
        return Detections(self.boxes[index], self.scores[index], self.classes[index])


@dataclass(frozen=True)
class GroundTruth:
    """Labelled objects of one image.

    boxes: (G, 4) float32 xyxy; classes: (G,) int64; crowd: (G,) bool (COCO ``iscrowd``: any number
    of detections may match it, none counts); ignore: (G,) bool (a detection matched to it counts neither
    way, e.g. VOC ``difficult``); area: (G,) float64 object area used for COCO's size ranges (box area
    when the label has none).
    """

    boxes: np.ndarray
    classes: np.ndarray
    crowd: np.ndarray = field(default=None)  # type: ignore[arg-type]
    ignore: np.ndarray = field(default=None)  # type: ignore[arg-type]
    area: np.ndarray = field(default=None)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        boxes = _as(self.boxes, np.float32, (4,), "GroundTruth.boxes")
        n = len(boxes)
        classes = _as(self.classes, np.int64, (), "GroundTruth.classes")
        crowd = np.zeros(n, bool) if self.crowd is None else _as(self.crowd, bool, (), "GroundTruth.crowd")
        ignore = (np.zeros(n, bool) if self.ignore is None
                  else _as(self.ignore, bool, (), "GroundTruth.ignore"))
        if self.area is None:
            area = ((boxes[:, 2] - boxes[:, 0]).astype(np.float64)
                    * (boxes[:, 3] - boxes[:, 1]).astype(np.float64))
        else:
            area = _as(self.area, np.float64, (), "GroundTruth.area")
        for name, arr in (("classes", classes), ("crowd", crowd), ("ignore", ignore), ("area", area)):
            if len(arr) != n:
                raise ValueError(f"GroundTruth.{name}: length {len(arr)} != {n} boxes")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "crowd", crowd)
        object.__setattr__(self, "ignore", ignore)
        object.__setattr__(self, "area", area)

    def __len__(self) -> int:
        return int(self.classes.shape[0])

    @classmethod
    def empty(cls) -> "GroundTruth":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))


@dataclass(frozen=True)
class SegMask:
    """A dense class map of one image.

    labels: (H, W) integer class index per pixel; scores: optional (H, W) float32 confidence of the
    chosen class (for overlays and thresholds).
    """

    labels: np.ndarray
    scores: np.ndarray | None = None

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels)
        if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"SegMask.labels: expected an (H, W) integer array, got {labels.dtype} "
                             f"{labels.shape}")
        if self.scores is not None and np.shape(self.scores) != labels.shape:
            raise ValueError(f"SegMask.scores: shape {np.shape(self.scores)} != labels {labels.shape}")
        object.__setattr__(self, "labels", labels)


@dataclass(frozen=True)
class FrameLabels:
    """Labels that travel with a frame (replay and synthetic sources, a labels file, the inbox).

    truth: detection labels in frame pixels, classes indexing ``classes``; mask: (H, W) class map
    indexing ``mask_classes`` (ignore_index marks unlabelled pixels). ``classes`` are also the classes
    the labels cover (a detection of another class is not judged), unless ``exhaustive``: every object
    of every class is labelled (a person's label of one frame, which names only the classes it found).
    """

    truth: GroundTruth | None = None
    classes: tuple[str, ...] = ()
    mask: np.ndarray | None = None
    mask_classes: tuple[str, ...] = ()
    ignore_index: int | None = None
    exhaustive: bool = False
    ids: np.ndarray | None = None  # (G,) identities of the truth boxes, when the labels carry them


@dataclass(frozen=True)
class Frame:
    """One captured frame. image: (H, W, 3) uint8 BGR; index: frame number from the source;
    pts: stream time in seconds; captured: time.monotonic() at arrival; name: e.g. the image file."""

    image: np.ndarray
    index: int
    pts: float
    captured: float
    labels: FrameLabels | None = None
    name: str = ""


@dataclass(frozen=True)
class Tracks:
    """Confirmed tracks of one frame (the only ones that carry an identity).

    boxes: (N, 4) float32 xyxy pixels; ids: (N,) int64 track identities (unique per stream, never reused);
    classes: (N,) int64; scores: (N,) float32 score of the detection that updated the track this frame.
    missed: confirmed tracks that were tracked last frame and found no detection in this one (where the
    detector and the tracker disagree: a frame worth labelling).
    """

    boxes: np.ndarray
    ids: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    missed: int = 0

    def __post_init__(self) -> None:
        boxes = _as(self.boxes, np.float32, (4,), "Tracks.boxes")
        for name, dtype in (("ids", np.int64), ("classes", np.int64), ("scores", np.float32)):
            arr = _as(getattr(self, name), dtype, (), f"Tracks.{name}")
            if len(arr) != len(boxes):
                raise ValueError(f"Tracks.{name}: length {len(arr)} != {len(boxes)} boxes")
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "boxes", boxes)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @classmethod
    def empty(cls) -> "Tracks":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
