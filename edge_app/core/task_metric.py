"""The one number a model is judged by, written once: training's best checkpoint, the INT8 gate, the
precision table and calibration all use it.

Detection: AP50 (COCO 101-point at IoU 0.5, mean over classes with labels). Segmentation with two
classes: Dice of the foreground class (class 1, e.g. ISBI's cells); more classes: mIoU.
"""
from __future__ import annotations

from typing import Any


def metric_name(task: str, num_classes: int) -> str:
    if task == "detection":
        return "AP50"
    return "Dice" if num_classes == 2 else "mIoU"


def metric_value(task: str, num_classes: int, report: Any) -> float:
    """The metric from a DetectionReport or a SegmentationReport of the core."""
    name = metric_name(task, num_classes)
    if name == "AP50":
        return float(report.map50)
    if name == "Dice":
        return float(report.dice[1])
    return float(report.miou)
