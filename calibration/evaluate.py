"""Offline accuracy of an artifact through the runtime's own code: the same Preprocessor, backend and
decoder (imported from edge_app, not copied), then the core metrics. NMS runs at a low score threshold
here so that PR curves are complete.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.core.classes import IGNORE, judged_classes, mask_lut, remap_truth
from edge_app.core.detection_metrics import DetectionMetrics, DetectionReport
from edge_app.core.operating_point import EVALUATION, keep_mask
from edge_app.cli.progress import progress as progress_bar
from edge_app.core.task_metric import metric_name, metric_value
from edge_app.core.segmentation_metrics import SegmentationMetrics, SegmentationReport
from edge_app.core.types import Detections, GroundTruth
from edge_app.datasets import Dataset, load_image, load_mask
from edge_app.inference.models import NetworkModel, open_artifact
from edge_app.frames.tiles import TileSpec

EVAL_SCORE_THRESHOLD = EVALUATION.score_threshold


@dataclass
class DetectionRun:
    """Every image's detections (at the low evaluation threshold) and ground truth in the model's class
    ids; ``judged`` (C,): the model classes the dataset covers (others' detections are not judged)."""

    classes: tuple[str, ...]
    judged: np.ndarray
    detections: list[Detections] = field(default_factory=list)
    truths: list[GroundTruth] = field(default_factory=list)
    image_ids: list[int] = field(default_factory=list)
    raw: list[tuple[dict[str, np.ndarray], Any]] = field(default_factory=list)  # backend outputs, geometry

    def report(self, iou_thresholds: Any = None, score_threshold: float | np.ndarray = 0.0) -> DetectionReport:
        kw = {} if iou_thresholds is None else {"iou_thresholds": iou_thresholds}
        m = DetectionMetrics(len(self.classes), **kw)
        thr = np.broadcast_to(np.asarray(score_threshold, np.float32), (len(self.classes),))
        for det, gt in zip(self.detections, self.truths):
            if len(det):  # the runtime's rule: judged classes only, score >= its class threshold
                det = det.select(self.judged[det.classes] & keep_mask(det.scores, thr[det.classes]))
            m.update(det, gt)
        return m.compute()

    def redecoded(self, decoder: Any) -> "DetectionRun":
        """The same images decoded again from the kept network outputs (other thresholds or NMS IoU)."""
        if len(self.raw) != len(self.truths):
            raise ValueError("redecoded: run_detection(..., keep_raw=True) keeps the network outputs")
        return DetectionRun(self.classes, self.judged, [decoder(o, g) for o, g in self.raw], self.truths,
                            self.image_ids, self.raw)


def run_detection(model: NetworkModel, dataset: Dataset, progress: bool = True,
                  limit: int | None = None, keep_raw: bool = False) -> DetectionRun:
    """The model over every image, as the runtime runs it; ``keep_raw`` keeps the network outputs so that
    decoding can be repeated with other NMS settings (the threshold sweep) without running it again."""
    classes = tuple(model.classes)
    run = DetectionRun(classes, judged_classes(dataset.classes, classes))
    samples = dataset.samples[:limit] if limit else dataset.samples
    for s in progress_bar(samples, len(samples), f"evaluate {model.name}", progress):
        image = load_image(s.image_path)
        if keep_raw:
            x, geo = model.prepare(image)  # a tiled detector's tiles, as it runs live
            outputs = model.infer(x)
            run.raw.append((outputs, geo))
            run.detections.append(model.decoder(outputs, geo))
        else:
            det = model.predict(image).detections
            assert det is not None
            run.detections.append(det)
        run.truths.append(remap_truth(s.truth, dataset.classes, classes)[0])
        run.image_ids.append(s.image_id)
    return run


def run_segmentation(model: Any, dataset: Dataset, progress: bool = True,
                     limit: int | None = None) -> SegmentationReport:
    classes = tuple(model.classes)
    lut = mask_lut(dataset.classes, classes, dataset.ignore_index)  # the rolling window's alignment
    metrics = SegmentationMetrics(len(classes), ignore_index=IGNORE)
    samples = dataset.samples[:limit] if limit else dataset.samples
    for s in progress_bar(samples, len(samples), f"evaluate {model.name}", progress):
        image = load_image(s.image_path)
        assert s.mask_path is not None, f"{s.image_path}: no mask"
        mask = load_mask(s.mask_path, s.image_path, image.shape)
        pred = model.predict(image).mask.labels
        metrics.update(np.minimum(pred, len(classes) - 1), lut[np.clip(mask, 0, 255).astype(np.uint8)])
    return metrics.compute()


def task_metric(model: Any, dataset: Dataset, progress: bool = True, limit: int | None = None) -> dict[str, Any]:
    """The one number a precision is judged by (``core.task_metric``), with mAP / mIoU beside it."""
    n = len(model.classes)
    name = metric_name(model.task, n)
    if model.task == "detection":
        d = run_detection(model, dataset, progress, limit).report()
        return {"metric": name, "value": metric_value(model.task, n, d), "mAP": d.map}
    s = run_segmentation(model, dataset, progress, limit)
    return {"metric": name, "value": metric_value(model.task, n, s), "mIoU": s.miou}


def measure_latency(model: NetworkModel, image: np.ndarray, runs: int = 30, warmup: int = 5) -> dict[str, float]:
    """Median and p90 of the backend's inference alone (ms) on one preprocessed image."""
    return measure_latencies({"m": model}, image, rounds=1, runs=runs, warmup=warmup)["m"]


def measure_latencies(models: dict[str, NetworkModel], image: np.ndarray, rounds: int = 6, runs: int = 8,
                      warmup: int = 5) -> dict[str, dict[str, float]]:
    """Median and p90 (ms) of each model's inference on one image, the models taking turns.

    ``rounds`` times, each model runs ``runs`` times in turn, so load from elsewhere on a shared machine
    falls on every model alike: comparing variants timed one after the other, minutes apart, flipped
    recommendations here (latency medians moved 20-40 % between runs).
    """
    feeds = {}
    for name, model in models.items():
        x, _ = model.prepare(image)  # a tiled detector: all its tiles, one frame's work
        feeds[name] = x
        for _ in range(warmup):
            model.infer(x)
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            for _ in range(runs):
                t0 = time.perf_counter()
                model.infer(feeds[name])
                times[name].append((time.perf_counter() - t0) * 1e3)
    out = {}
    for name, t in times.items():
        t.sort()
        out[name] = {"median_ms": round(statistics.median(t), 3), "p90_ms": round(t[int(0.9 * (len(t) - 1))], 3)}
    return out


def open_for_eval(path: Path, threads: int = 2, spin: bool = False, tiles: TileSpec = TileSpec(),
                  class_groups: tuple[tuple[str, tuple[str, ...]], ...] = (), backend: str = "onnxruntime",
                  precision: str | None = None) -> NetworkModel:
    """An artifact opened as the runtime would (its tiles and class groups too; on ``backend``, computed at
    ``precision``: default the file's own), with evaluation thresholds (complete PR curves)."""
    e = EVALUATION
    return open_artifact(Path(path), score_threshold=e.score_threshold, nms_iou=e.nms_iou, top_k=e.top_k,
                         max_detections=e.max_detections, threads=threads, spin=spin, tiles=tiles,
                         class_groups=class_groups, backend=backend, precision=precision)
