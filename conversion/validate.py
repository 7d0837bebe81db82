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
from edge_app.core.preprocess import Preprocessor
from edge_app.core.segmentation_metrics import SegmentationMetrics
from edge_app.decoders import DetectionDecoder, SegmentationDecoder

from .datasets import Source
from .extras import require

torch = require("torch")


def _progress(it: Any, desc: str, total: int, enabled: bool) -> Any:
    if not enabled:
        return it
    tqdm = require("tqdm").tqdm
    return tqdm(it, desc=desc, total=total, leave=False, dynamic_ncols=True)


@torch.no_grad()
def validate_detection(export_model: Any, source: Source, meta: ArtifactMeta, progress: bool = True,
                       score_threshold: float = 0.01, max_images: int | None = None) -> dict[str, Any]:
    """AP50, mAP, per-class AP and the lecture's AP on ``source`` (boxes in original image pixels)."""
    export_model.eval()
    pre = Preprocessor.from_meta(meta)
    decoder = DetectionDecoder(meta, score_threshold=score_threshold, iou_threshold=0.5, top_k=1000,
                               max_detections=100)
    metrics = DetectionMetrics(meta.num_classes)
    n = len(source) if max_images is None else min(len(source), max_images)
    for i in _progress(range(n), "validate", n, progress):
        item = source.item(i)
        x, geo = pre(item.image)
        boxes, scores = export_model(torch.from_numpy(x))
        det = decoder({decoder.boxes_name: boxes.numpy(), decoder.scores_name: scores.numpy()}, geo)
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
    for i in _progress(range(n), "validate", n, progress):
        item = source.item(i, with_mask=True)
        x, geo = pre(item.image)
        logits = model(torch.from_numpy(x)).numpy()
        seg = decoder({decoder.logits_name: logits}, geo)
        assert item.mask is not None
        metrics.update(seg.labels, item.mask)
    r = metrics.compute()
    # Binary tasks are judged by the foreground class's Dice (e.g. the ISBI cell class), others by mIoU.
    dice = float(r.dice[1]) if meta.num_classes == 2 else r.mean_dice
    return {"mIoU": r.miou, "Dice": dice, "mean_Dice": r.mean_dice, "pixel_accuracy": r.pixel_accuracy,
            "IoU_per_class": dict(zip(meta.classes, _clean(r.iou))),
            "Dice_per_class": dict(zip(meta.classes, _clean(r.dice))), "images": n}


def _clean(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else round(float(v), 6) for v in values]
