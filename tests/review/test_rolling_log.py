"""The periodic metrics log line: classes that measured nothing are left out of it, /status keeps them."""
import numpy as np

from edge_app.core.types import Detections, FrameLabels, GroundTruth
from edge_app.inference.models import ModelResult
from edge_app.review.rolling import RollingMonitor, for_log

CLASSES = ("person", "car", "kite", "toothbrush")


def test_log_view_leaves_out_classes_with_nothing_measured():
    rolling = RollingMonitor()
    rolling.add_model("coco", "detection", CLASSES)
    box = np.array([[10, 10, 50, 90]], np.float32)
    # a person found and labelled, a car detected but not labelled (a false positive): both measured;
    # kite and toothbrush neither detected nor labelled
    det = Detections(np.concatenate([box, box + 200]), np.array([0.9, 0.8], np.float32), np.array([0, 1]))
    labels = FrameLabels(truth=GroundTruth(box, np.array([0])), classes=CLASSES)
    rolling.update([ModelResult("coco", "detection", CLASSES, detections=det)], labels, now=1.0)
    snap = rolling.snapshot(now=1.0)
    logged = for_log(snap)
    assert set(snap["coco"]["per_class"]) == set(CLASSES)            # /status: every class
    assert set(logged["coco"]["per_class"]) == {"person", "car"}      # the log: what was measured
    assert logged["coco"]["per_class"]["car"]["fp"] == 1
    assert logged["coco"]["precision"] == snap["coco"]["precision"] == 0.5
    assert set(snap["coco"]["per_class"]) == set(CLASSES)            # the snapshot itself is not changed
