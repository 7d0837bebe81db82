"""MOTChallenge files: ``det.txt`` / ``gt.txt`` / tracker output (``frame, id, x, y, w, h, conf, ...``,
1-based frames, pixel boxes) and ``seqinfo.ini``. Readers sort by frame (the shared MOT17 detections are
not sorted) and reject malformed rows with the file and line: wrong column count, non-numeric fields,
non-integer frames, negative sizes.
"""
from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.artifact import write_atomic
from ..core.types import Detections, Tracks


class MotFormatError(ValueError):
    pass


@dataclass(frozen=True)
class MotRows:
    """Rows of a MOT file sorted by frame: frames (N,), ids (N,), boxes (N, 4) xywh, conf (N,), extra
    (N, K) the remaining columns (gt: class, visibility; MOT15: x, y, z)."""

    frames: np.ndarray
    ids: np.ndarray
    boxes: np.ndarray
    conf: np.ndarray
    extra: np.ndarray
    line: np.ndarray | None = None  # (N,) the 1-based line of each row in its file (errors name it)

    def frame_range(self) -> tuple[int, int]:
        return (int(self.frames.min()), int(self.frames.max())) if len(self.frames) else (1, 0)


def read_mot(path: str | Path, min_columns: int = 6) -> MotRows:
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise MotFormatError(f"{path}: cannot read ({exc.strerror})") from None
    rows: list[list[float]] = []
    numbers: list[int] = []
    width = None
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        fields = [f.strip() for f in line.replace(" ", ",").split(",") if f.strip() != ""]
        if len(fields) < min_columns:
            raise MotFormatError(f"{path}:{n}: expected at least {min_columns} comma-separated columns "
                                 f"(frame, id, x, y, w, h, ...), got {len(fields)}")
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            raise MotFormatError(f"{path}:{n}: {len(fields)} columns, earlier rows have {width}")
        try:
            values = [float(f) for f in fields]
        except ValueError:
            raise MotFormatError(f"{path}:{n}: non-numeric field in {line!r}") from None
        if values[0] != int(values[0]) or values[0] < 1:
            raise MotFormatError(f"{path}:{n}: frame {fields[0]!r} is not a positive integer")
        if values[4] < 0 or values[5] < 0:
            raise MotFormatError(f"{path}:{n}: negative box size {fields[4]} x {fields[5]}")
        rows.append(values)
        numbers.append(n)
    if not rows:
        z = np.zeros(0)
        return MotRows(z.astype(np.int64), z.astype(np.int64), np.zeros((0, 4)), z, np.zeros((0, 0)))
    a = np.array(rows, np.float64)
    order = np.argsort(a[:, 0], kind="stable")
    a = a[order]
    conf = a[:, 6] if a.shape[1] > 6 else np.ones(len(a))
    return MotRows(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2:6], conf, a[:, 7:],
                   np.asarray(numbers, np.int64)[order])


@dataclass(frozen=True)
class SeqInfo:
    name: str
    frame_rate: float
    length: int
    width: int
    height: int
    image_ext: str = ".jpg"


def image_path(folder: str | Path, frame: int, ext: str = ".jpg") -> Path:
    """A sequence's image of ``frame`` (1-based) in its ``img1/`` folder: MOTChallenge's ``000001.jpg`` naming
    (``ext``: seqinfo's ``imExt``)."""
    return Path(folder) / f"{frame:06d}{ext}"


def read_seqinfo(path: str | Path) -> SeqInfo:
    path = Path(path)
    parser = configparser.ConfigParser()
    try:
        if not parser.read(path):
            raise MotFormatError(f"{path}: not found")
        sec = parser["Sequence"]
        return SeqInfo(sec.get("name", path.parent.name), float(sec.get("frameRate", "30")),
                       int(sec["seqLength"]), int(sec.get("imWidth", "0")), int(sec.get("imHeight", "0")),
                       sec.get("imExt", ".jpg"))
    except (KeyError, ValueError, configparser.Error) as exc:
        raise MotFormatError(f"{path}: expected a [Sequence] section with seqLength, frameRate ({exc})") from None


def detections_by_frame(rows: MotRows, length: int | None = None) -> list[tuple[int, Detections]]:
    """[(frame, Detections)] for frames 1..length (every frame, empty ones included): boxes xyxy, class 0."""
    last = length or (rows.frame_range()[1] if len(rows.frames) else 0)
    starts = np.searchsorted(rows.frames, np.arange(1, last + 2))
    out = []
    for f in range(1, last + 1):
        a, b = starts[f - 1], starts[f]
        xywh = rows.boxes[a:b]
        xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        out.append((f, Detections(xyxy, rows.conf[a:b], np.zeros(b - a, np.int64))))
    return out


def write_tracks(path: str | Path, frames: list[tuple[int, Tracks]]) -> Path:
    """MOT tracker output: ``frame, id, x, y, w, h, conf, -1, -1, -1`` (atomically written)."""
    lines = []
    for f, tr in frames:
        for box, tid, score in zip(tr.boxes.astype(np.float64), tr.ids, tr.scores):
            x1, y1, x2, y2 = box
            lines.append(f"{f},{int(tid)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{float(score):.4f},-1,-1,-1")
    write_atomic(Path(path), "\n".join(lines) + ("\n" if lines else ""))
    return Path(path)
