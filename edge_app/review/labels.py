"""Label providers for the rolling metrics (the replay and synthetic sources attach their own):

- LabelsFile: labels of a recorded video: a COCO JSON whose image ids are frame indices, or a folder
  of per-frame VOC XML named by frame index (``12.xml`` or ``000012.xml``).
- Sampler: 1 frame in N is saved with the models' predictions to the samples folder (bounded disk use),
  for labelling later. With an inbox, when a VOC XML / COCO JSON / mask PNG for a saved sample appears
  there, that sample is scored then. Processed label files move to ``inbox/done``, unusable ones to
  ``inbox/bad``. A per-frame VOC label is exhaustive: it names only the classes it found, and every
  other class's detections on that frame are false positives.
"""
from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from ..core.artifact import write_atomic
from ..health.disk import DiskBudget
from ..core.types import Detections, Frame, FrameLabels, GroundTruth, SegMask, Tracks
from ..datasets import DatasetError, read_coco
from ..datasets.voc import parse_voc_xml
from ..inference.models import ModelResult
from .rolling import RollingMonitor

log = logging.getLogger("edge_app.review.labels")


def _voc_labels(path: Path) -> FrameLabels:
    _, _, objects = parse_voc_xml(path)
    names = tuple(sorted({o[0] for o in objects}))
    idx = {n: i for i, n in enumerate(names)}
    truth = GroundTruth(np.array([o[1] for o in objects], np.float32).reshape(-1, 4),
                        np.array([idx[o[0]] for o in objects], np.int64), ignore=np.array([o[2] for o in objects], bool))
    return FrameLabels(truth=truth, classes=names, exhaustive=True)


class LabelsFile:
    """Frame index -> FrameLabels for a recorded video. Reloaded on SIGHUP."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._by_index: dict[int, FrameLabels] = {}
        self._voc: dict[int, Path] = {}
        self.errors = 0
        self.reload()

    @classmethod
    def open(cls, path: Path) -> "LabelsFile":
        return cls(path)

    def reload(self) -> None:
        self._by_index, self._voc = {}, {}
        if self.path.is_dir():
            for xml in self.path.glob("*.xml"):
                if xml.stem.isdigit():
                    self._voc[int(xml.stem)] = xml
            log.info("labels file: %d per-frame VOC files in %s", len(self._voc), self.path)
            return
        ds = read_coco(self.path)
        for s in ds.samples:
            self._by_index[s.image_id] = FrameLabels(truth=s.truth, classes=ds.classes)
        log.info("labels file: %d labelled frames in %s", len(self._by_index), self.path)

    def __call__(self, frame: Frame) -> FrameLabels | None:
        if frame.index in self._by_index:
            return self._by_index[frame.index]
        xml = self._voc.get(frame.index)
        if xml is None:
            return None
        try:
            labels = _voc_labels(xml)
        except DatasetError as exc:
            self.errors += 1
            log.warning("labels file: %s", exc)
            self._voc.pop(frame.index, None)
            return None
        self._by_index[frame.index] = labels
        return labels


class Sampler:
    """Saves 1 frame in N with predictions; scores them when their labels reach the inbox."""

    def __init__(self, samples_dir: Path, inbox: Path | None, every: int, max_mb: int, rolling: RollingMonitor,
                 poll_s: float = 1.0, *, uncertain_margin: float = 0.0, disagreements: bool = False,
                 extra_per_minute: int = 0, thresholds: Callable[[str], np.ndarray | None] | None = None,
                 disk: DiskBudget | None = None, run: str = "", stream: str = "") -> None:
        """inbox: where labels of saved samples arrive (None: samples are only saved, for labelling later).

        Besides 1 frame in ``every``, frames that serve labelling most are saved too, at most
        ``extra_per_minute``: "uncertain" (a detection within ``uncertain_margin`` of its class threshold;
        ``thresholds(model)`` gives a detector's (C,) per-class thresholds) and "disagree" (a confirmed
        track found no detection). A sample's ``reasons`` say which. ``disk``: the device's disk budget
        (``max_mb`` shrinks to what the disk has room for; a sample that cannot be written is skipped,
        counted in ``failed``, and said in the health). ``run`` / ``stream``: recorded with each sample, so
        /review can show this run's frames of one camera, not a mix of every run that ever sampled)."""
        self.dir, self.every, self.max_bytes = Path(samples_dir), every, max_mb * 2**20
        self.uncertain_margin, self.disagreements = uncertain_margin, disagreements
        self.extra_per_minute, self.thresholds = extra_per_minute, thresholds
        self._extra_times: list[float] = []
        self.inbox = Path(inbox) if inbox is not None else None
        self.rolling, self.poll_s = rolling, poll_s
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.inbox is not None:
            for d in (self.inbox, self.inbox / "done", self.inbox / "bad"):
                d.mkdir(parents=True, exist_ok=True)
        self.saved = self.scored = self.bad = self.failed = 0
        self.run, self.stream = run, stream
        # called with (sample id, the sample's saved results, its labels) for each labelled sample: a
        # candidate model's shadow predictions of that frame are scored against the same labels (rollout)
        self.on_labels: Callable[[str, list[ModelResult], FrameLabels], None] | None = None
        self.disk = disk or DiskBudget()
        self._used = self._size()
        self._seen = 0
        self._last_poll = 0.0
        self._lock = threading.Lock()

    # -- saving -----------------------------------------------------------------------------------
    def on_processed(self, frame: Frame, results: list[ModelResult],
                     tracks: dict[str, Tracks] | None = None) -> str | None:
        """Save the frame if it is due; returns its sample id (None when not saved). ``tracks``: {detector:
        its confirmed tracks} of the frame (a track that found no detection: "disagree")."""
        self._seen += 1
        reasons = self.reasons(results, tracks)
        saved = None
        if self.every > 0 and (self._seen - 1) % self.every == 0:
            saved = self.save(frame, results, ["every", *reasons])
        elif reasons and self._extra_allowed(time.monotonic()):
            saved = self.save(frame, results, reasons)
        if self.inbox is not None and time.monotonic() - self._last_poll >= self.poll_s:
            self._last_poll = time.monotonic()
            self.poll()
        return saved

    def reasons(self, results: list[ModelResult], tracks: dict[str, Tracks] | None = None) -> list[str]:
        """Why this frame is worth labelling beyond 1 in N: "uncertain", "disagree" (maybe both)."""
        out = []
        if self.uncertain_margin > 0 and self.thresholds is not None:
            for r in results:
                det = r.detections
                thr = self.thresholds(r.name) if det is not None and len(det) else None
                if det is not None and thr is not None and bool((det.scores < thr[det.classes]
                                                                 + self.uncertain_margin).any()):
                    out.append("uncertain")
                    break
        if self.disagreements and any(t.missed > 0 for t in (tracks or {}).values()):
            out.append("disagree")
        return out

    def _extra_allowed(self, now: float) -> bool:
        self._extra_times = [t for t in self._extra_times if now - t < 60.0]
        if len(self._extra_times) >= self.extra_per_minute:
            return False
        self._extra_times.append(now)
        return True

    def save(self, frame: Frame, results: list[ModelResult], reasons: list[str] | None = None) -> str | None:
        """Save the frame and its predictions; None when the disk had no room (the health says so)."""
        sample_id = f"{int(time.time() * 1000)}-{frame.index:08d}"
        record: dict[str, Any] = {"sample": sample_id, "frame": frame.index, "source": frame.name,
                                  "run": self.run, "stream": self.stream,
                                  "size": [frame.image.shape[1], frame.image.shape[0]],
                                  "reasons": reasons or ["every"], "models": {}}
        ok, jpg = cv2.imencode(".jpg", frame.image, [int(cv2.IMWRITE_JPEG_QUALITY), 92])
        files: dict[str, bytes] = {}
        for r in results:
            entry: dict[str, Any] = {"task": r.task, "classes": list(r.classes)}
            if r.detections is not None:
                entry.update(boxes=r.detections.boxes.tolist(), scores=r.detections.scores.tolist(),
                             labels=r.detections.classes.tolist())
            if r.mask is not None:
                mask_name = f"{sample_id}.{r.name}.png"
                files[mask_name] = cv2.imencode(".png", r.mask.labels.astype(np.uint8))[1].tobytes()
                entry["mask"] = mask_name
            record["models"][r.name] = entry
        if ok:
            files[f"{sample_id}.jpg"] = jpg.tobytes()
        files[f"{sample_id}.json"] = json.dumps(record).encode()  # last: a sample exists once its record does
        need = sum(len(b) for b in files.values())
        cap = self.disk.cap(self.dir, self.max_bytes, self._used)
        if self._used + need > cap:
            self.enforce_cap(max(0, int(cap * 0.9) - need))  # room for a few more, not one scan per save
        if self._used + need > cap:
            self.failed += 1
            self.disk.problem("samples", f"paused: no room in {self.dir} ({cap / 2**20:.1f} MB usable of "
                                         f"{self.max_bytes / 2**20:.0f} MB configured)")
            return None
        try:
            for name, data in files.items():
                write_atomic(self.dir / name, data)
                self._used += len(data)
        except OSError as exc:  # the disk filled meanwhile: what was written of this sample goes
            for name in files:
                (self.dir / name).unlink(missing_ok=True)
            self._used = self._size()
            self.failed += 1
            self.disk.problem("samples", f"cannot write {self.dir}: {exc.strerror or exc}")
            return None
        self.disk.clear("samples")
        self.saved += 1
        return sample_id

    def _size(self) -> int:
        return sum(p.stat().st_size for p in self.dir.glob("*") if p.is_file())

    def enforce_cap(self, max_bytes: int | None = None) -> None:
        """Remove the oldest samples (all their files) until at most ``max_bytes`` (default: the cap) remain."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        files = sorted((p for p in self.dir.glob("*") if p.is_file()), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        groups: dict[str, list[Path]] = {}
        for p in files:
            groups.setdefault(p.name.split(".")[0], []).append(p)
        for _sid, paths in sorted(groups.items(), key=lambda kv: min(p.stat().st_mtime for p in kv[1])):
            if total <= limit:
                break
            for p in paths:
                total -= p.stat().st_size
                p.unlink(missing_ok=True)
        self._used = total

    # -- scoring ----------------------------------------------------------------------------------
    def _results(self, record: dict[str, Any]) -> list[ModelResult]:
        out = []
        for name, e in record["models"].items():
            r = ModelResult(name, e["task"], tuple(e["classes"]))
            if "boxes" in e:
                r.detections = Detections(np.array(e["boxes"], np.float32).reshape(-1, 4), e["scores"], e["labels"])
            if "mask" in e:
                m = cv2.imread(str(self.dir / e["mask"]), cv2.IMREAD_UNCHANGED)
                if m is not None:
                    r.mask = SegMask(m)
            out.append(r)
        return out

    def _labels_of(self, path: Path) -> list[tuple[str, FrameLabels]]:
        """(sample id, labels) pairs a label file holds."""
        if path.suffix == ".xml":
            return [(path.stem, _voc_labels(path))]
        if path.suffix == ".json":
            ds = read_coco(path)
            return [(s.image_path.stem, FrameLabels(truth=s.truth, classes=ds.classes)) for s in ds.samples]
        if path.suffix == ".png":
            sid = path.name.split(".")[0]
            mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if mask is None or mask.ndim != 2:
                raise DatasetError(f"{path}: not a single-channel class-index PNG")
            return [(sid, FrameLabels(mask=mask, mask_classes=()))]
        raise DatasetError(f"{path}: expected .xml (VOC), .json (COCO) or .png (mask)")

    def poll(self) -> int:
        """Score every label file in the inbox whose sample exists; returns how many samples were scored."""
        if self.inbox is None:
            return 0
        n = 0
        with self._lock:
            # ".name.tmp": a label being written atomically (the review page's) is not there yet
            for path in sorted(p for p in self.inbox.iterdir() if p.is_file() and not p.name.startswith(".")):
                try:
                    pairs = self._labels_of(path)
                    for sid, labels in pairs:
                        rec_path = self.dir / f"{sid}.json"
                        if not rec_path.is_file():
                            raise DatasetError(f"{path}: no saved sample {sid} in {self.dir}")
                        record = json.loads(rec_path.read_text())
                        results = self._results(record)
                        if labels.mask is not None and not labels.mask_classes:
                            # a mask PNG indexes the model's own classes
                            seg = next((r for r in results if r.mask is not None), None)
                            labels = FrameLabels(mask=labels.mask, mask_classes=seg.classes if seg else ())
                        self.rolling.update(results, labels)
                        if self.on_labels is not None:
                            try:
                                self.on_labels(sid, results, labels)
                            except Exception as exc:  # the candidate's scoring never costs the label
                                log.warning("label inbox: candidate scoring of %s failed: %s", sid, exc)
                        n += 1
                    shutil.move(str(path), str(self.inbox / "done" / path.name))
                except (DatasetError, OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
                    self.bad += 1
                    log.warning("label inbox: %s unusable: %s", path.name, exc)
                    shutil.move(str(path), str(self.inbox / "bad" / path.name))
        self.scored += n
        return n
