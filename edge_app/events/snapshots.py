"""JPEG snapshots of track events (the best-scoring frame's crop and the whole frame), under a disk cap:
the oldest files go first. Written atomically, so a half-written JPEG is never published."""
from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from ..core.artifact import write_atomic
from ..health.disk import DiskBudget


class SnapshotStore:
    def __init__(self, folder: Path, max_bytes: int = 200 * 2**20, quality: int = 85,
                 disk: DiskBudget | None = None) -> None:
        """disk: the device's budget: the cap shrinks to what the disk has room for (never the outbox's
        reserve); a snapshot that does not fit is not taken (its event is, without it)."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes, self.quality = max_bytes, quality
        self.disk = disk or DiskBudget()
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
            cap = self.disk.cap(self.folder, self.max_bytes, self._bytes)
            if self._bytes + len(jpg) > cap:
                self._trim(max(0, int(cap * 0.9) - len(jpg)))
            if self._bytes + len(jpg) > cap:
                raise OSError(f"no room for snapshots in {self.folder} ({cap / 2**20:.1f} MB usable)")
            path = self.folder / f"{name}.{kind}.jpg"
            write_atomic(path, jpg.tobytes())
            out[kind] = str(path)
            with self._lock:
                self._bytes += len(jpg)
        self.written += 1
        if self._bytes > self.max_bytes:
            self._trim(int(self.max_bytes * 0.9))
        return out

    def _trim(self, limit: int) -> None:
        with self._lock:
            files = sorted(self.folder.glob("*.jpg"), key=lambda p: p.stat().st_mtime)
            for p in files:
                if self._bytes <= limit:
                    break
                size = p.stat().st_size
                p.unlink(missing_ok=True)
                self._bytes -= size
