"""Validation during training with the core's metrics and the runtime's decoders.

Detection: the export graph's outputs go through the same DetectionDecoder (core NMS) as on the device,
then DetectionMetrics (COCO rules): AP50 and mAP@[.5:.95]. Segmentation: argmax at input resolution,
mapped back to the label's resolution, then SegmentationMetrics: mIoU, Dice, per-class IoU.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from edge_app.core.artifact import ArtifactMeta
from edge_app.core.detection_metrics import DetectionMetrics
from edge_app.core.operating_point import EVALUATION
from edge_app.frames.preprocess import Preprocessor
from edge_app.cli.progress import progress as progress_bar
from edge_app.core.task_metric import metric_name, metric_value
from edge_app.core.segmentation_metrics import SegmentationMetrics
from edge_app.decoders import DetectionDecoder, SegmentationDecoder

from .datasets import Source
from .extras import require

torch = require("torch")


@torch.no_grad()
def validate_detection(export_model: Any, source: Source, meta: ArtifactMeta, progress: bool = True,
                       max_images: int | None = None) -> dict[str, Any]:
    """AP50, mAP, per-class AP and the lecture's AP on ``source`` (boxes in original image pixels)."""
    export_model.eval()
    pre = Preprocessor.from_meta(meta)
    e = EVALUATION
    decoder = DetectionDecoder(meta, score_threshold=e.score_threshold, iou_threshold=e.nms_iou, top_k=e.top_k,
                               max_detections=e.max_detections)
    metrics = DetectionMetrics(meta.num_classes)
    n = len(source) if max_images is None else min(len(source), max_images)
    for i in progress_bar(range(n), n, "validate", progress):
        item = source.item(i)
        x, geo = pre(item.image)
        boxes, scores = export_model(torch.from_numpy(x))
        names = decoder.head.names  # role -> output name (the exported SSD's: decoded boxes, scores)
        det = decoder({names["boxes"]: boxes.numpy(), names["scores"]: scores.numpy()}, geo)
        truth = source.dataset.samples[i].truth if source.dataset is not None else None
        if truth is None:
            from edge_app.core.types import GroundTruth
            truth = GroundTruth(item.boxes, item.classes)
        metrics.update(det, truth)
    r = metrics.compute()
    return {"AP50": r.map50, "mAP": r.map, "AP50_per_class": dict(zip(meta.classes, _clean(r.ap50))),
            "AP_lecture50": dict(zip(meta.classes, _clean(r.ap_lecture))), "images": n,
            "coco": r.stats_dict()}


@torch.no_grad()
def validate_segmentation(model: Any, source: Source, meta: ArtifactMeta, progress: bool = True,
                          max_images: int | None = None) -> dict[str, Any]:
    """mIoU, mean Dice, per-class IoU/Dice, pixel accuracy at the labels' own resolution."""
    model.eval()
    pre = Preprocessor.from_meta(meta)
    decoder = SegmentationDecoder(meta)
    metrics = SegmentationMetrics(meta.num_classes, source.ignore_index)
    n = len(source) if max_images is None else min(len(source), max_images)
    for i in progress_bar(range(n), n, "validate", progress):
        item = source.item(i, with_mask=True)
        x, geo = pre(item.image)
        logits = model(torch.from_numpy(x)).numpy()
        seg = decoder({decoder.logits_name: logits}, geo)
        assert item.mask is not None
        metrics.update(seg.labels, item.mask)
    r = metrics.compute()
    # The task metric (core.task_metric) under its own name, mean Dice beside it.
    n = meta.num_classes
    return {"mIoU": r.miou, metric_name("segmentation", n): metric_value("segmentation", n, r),
            "mean_Dice": r.mean_dice, "pixel_accuracy": r.pixel_accuracy,
            "IoU_per_class": dict(zip(meta.classes, _clean(r.iou))),
            "Dice_per_class": dict(zip(meta.classes, _clean(r.dice))), "images": n}


def _clean(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else round(float(v), 6) for v in values]
