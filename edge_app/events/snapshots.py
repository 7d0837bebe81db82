"""JPEG snapshots of track events (the best-scoring frame's crop and the whole frame), under a disk cap:
the oldest files go first. Written atomically, so a half-written JPEG is never published."""
from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from ..core.artifact import write_atomic


class SnapshotStore:
    def __init__(self, folder: Path, max_bytes: int = 200 * 2**20, quality: int = 85) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes, self.quality = max_bytes, quality
        self._lock = threading.Lock()
        self._bytes = sum(p.stat().st_size for p in self.folder.glob("*.jpg"))
        self.written = 0

    def save(self, name: str, frame: np.ndarray, box: np.ndarray) -> dict[str, str]:
        """Crop (the box, 10 % margin) and the whole frame as ``<name>.crop.jpg`` / ``<name>.frame.jpg``."""
        h, w = frame.shape[:2]
        x1, y1, x2, y2 = (float(v) for v in box)
        mx, my = 0.1 * (x2 - x1), 0.1 * (y2 - y1)
        a, b = int(max(0, x1 - mx)), int(max(0, y1 - my))
        c, d = int(min(w, x2 + mx + 1)), int(min(h, y2 + my + 1))
        crop = frame[b:d, a:c] if c > a and d > b else frame
        out = {}
        for kind, image in (("crop", crop), ("frame", frame)):
            ok, jpg = cv2.imencode(".jpg", image, [int(cv2.IMWRITE_JPEG_QUALITY), self.quality])
            if not ok:
                continue
            path = self.folder / f"{name}.{kind}.jpg"
            write_atomic(path, jpg.tobytes())
            out[kind] = str(path)
            with self._lock:
                self._bytes += len(jpg)
        self.written += 1
        if self._bytes > self.max_bytes:
            self._trim()
        return out

    def _trim(self) -> None:
        with self._lock:
            files = sorted(self.folder.glob("*.jpg"), key=lambda p: p.stat().st_mtime)
            for p in files:
                if self._bytes <= self.max_bytes * 0.9:
                    break
                size = p.stat().st_size
                p.unlink(missing_ok=True)
                self._bytes -= size
