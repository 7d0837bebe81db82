"""Rolling precision/recall: which detections labels can judge, windows, drift, the label inbox. (That the
live window equals `edge-app calibrate` on the same frames is tested end to end in
tests/calibration/test_live_equals_calibration.py.)"""
import time
from pathlib import Path

import numpy as np
import pytest

from edge_app.core.segmentation_metrics import SegmentationMetrics
from edge_app.core.types import Detections, FrameLabels, GroundTruth, SegMask
from edge_app.inference.models import ModelResult
from edge_app.review.labels import Sampler
from edge_app.review.rolling import RollingMonitor
from edge_app.datasets.synthetic import make_sample, write_dataset


def write_synthetic_voc(root: Path, n: int, seed: int = 5) -> Path:
    """A small labelled VOC dataset of synthetic scenes (masks beside it)."""
    return write_dataset(root, n, seed, 320, 240)


def test_segmentation_rolling_equals_direct_confusion():
    rng = np.random.default_rng(0)
    rolling = RollingMonitor(window_frames=100, window_seconds=1e6)
    rolling.add_model("seg", "segmentation", ("background", "circle", "square", "triangle"))
    total = SegmentationMetrics(4)
    for _ in range(5):
        s = make_sample(rng, 64, 48)
        pred = np.where(rng.random(s.mask.shape) < 0.8, s.mask, rng.integers(0, 4, s.mask.shape)).astype(np.uint8)
        r = ModelResult("seg", "segmentation", ("background", "circle", "square", "triangle"), mask=SegMask(pred))
        rolling.update([r], FrameLabels(mask=s.mask, mask_classes=("background", "circle", "square", "triangle")))
        total.update(pred, s.mask)
    snap = rolling.snapshot()["seg"]
    assert snap["miou"] == pytest.approx(total.compute().miou)


def test_binary_model_scored_against_multiclass_masks():
    rolling = RollingMonitor(window_frames=10, window_seconds=1e6)
    rolling.add_model("fg", "segmentation", ("background", "foreground"))
    mask = np.zeros((10, 10), np.uint8)
    mask[2:5, 2:5] = 3  # a triangle
    pred = (mask > 0).astype(np.uint8)
    r = ModelResult("fg", "segmentation", ("background", "foreground"), mask=SegMask(pred))
    rolling.update([r], FrameLabels(mask=mask, mask_classes=("background", "circle", "square", "triangle")))
    snap = rolling.snapshot()["fg"]
    assert snap["per_class"]["foreground"]["iou"] == 1.0


def test_drift_warning_after_enough_frames():
    rolling = RollingMonitor(window_frames=100, window_seconds=1e6, precision_floor=0.5, recall_floor=0.5,
                             min_labelled=3)
    rolling.add_model("d", "detection", ("a",))
    miss = ModelResult("d", "detection", ("a",), detections=Detections(np.array([[50, 50, 60, 60]], np.float32), [0.9], [0]))
    labels = FrameLabels(truth=GroundTruth(np.array([[0, 0, 10, 10]], np.float32), [0]), classes=("a",))
    rolling.update([miss], labels)
    assert rolling.drift_warnings(rolling.snapshot()) == []  # too few frames to judge
    for _ in range(3):
        rolling.update([miss], labels)
    warnings = rolling.drift_warnings(rolling.snapshot())
    assert len(warnings) == 2 and "precision 0.000 below the floor" in warnings[0]


def test_label_inbox_scores_saved_samples_later(tmp_path):
    rolling = RollingMonitor(window_frames=100, window_seconds=1e6)
    rolling.add_model("d", "detection", ("raccoon",))
    sampler = Sampler(tmp_path / "samples", tmp_path / "inbox", every=2, max_mb=5, rolling=rolling, poll_s=1e9)
    from edge_app.core.types import Frame
    ids = []
    for i in range(4):
        frame = Frame(np.zeros((100, 120, 3), np.uint8), i, i / 10, time.monotonic())
        det = Detections(np.array([[10, 10, 50, 50]], np.float32), [0.8], [0])
        before = set(p.stem for p in (tmp_path / "samples").glob("*.json"))
        sampler.on_processed(frame, [ModelResult("d", "detection", ("raccoon",), detections=det)])
        ids += sorted(set(p.stem for p in (tmp_path / "samples").glob("*.json")) - before)
    assert len(ids) == 2  # one frame in two was saved
    # a VOC label arrives for the first sample (a hit), a corrupt one for the second
    (tmp_path / "inbox" / f"{ids[0]}.xml").write_text(
        "<annotation><object><name>raccoon</name><bndbox><xmin>12</xmin><ymin>10</ymin><xmax>50</xmax>"
        "<ymax>52</ymax></bndbox></object></annotation>")
    (tmp_path / "inbox" / f"{ids[1]}.xml").write_text("<annotation><object>")
    (tmp_path / "inbox" / "unknown-sample.xml").write_text("<annotation></annotation>")
    assert sampler.poll() == 1
    snap = rolling.snapshot()["d"]
    assert snap["frames"] == 1 and snap["precision"] == 1.0 and snap["recall"] == 1.0
    assert (tmp_path / "inbox" / "done" / f"{ids[0]}.xml").exists()
    assert sorted(p.name for p in (tmp_path / "inbox" / "bad").iterdir()) == sorted(
        [f"{ids[1]}.xml", "unknown-sample.xml"])
    assert sampler.bad == 2


def test_sampler_keeps_disk_use_bounded(tmp_path):
    rolling = RollingMonitor()
    sampler = Sampler(tmp_path / "s", tmp_path / "in", every=1, max_mb=1, rolling=rolling, poll_s=1e9)
    from edge_app.core.types import Frame
    rng = np.random.default_rng(0)
    for i in range(60):  # noisy frames compress badly: ~100 kB each
        sampler.on_processed(Frame(rng.integers(0, 255, (240, 320, 3), np.uint8), i, 0.0, 0.0), [])
    total = sum(p.stat().st_size for p in (tmp_path / "s").iterdir())
    assert total <= 1.2 * 2**20
    assert sampler.saved == 60


def _det(boxes, scores, classes):
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), scores, classes)


def test_labels_judge_only_the_classes_they_cover_unless_exhaustive():
    classes = ("circle", "square", "triangle")
    r = ModelResult("d", "detection", classes, detections=_det([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8], [0, 2]))
    truth = GroundTruth(np.array([[0, 0, 10, 10]], np.float32), [0])
    partial = RollingMonitor(window_frames=10, window_seconds=1e6)
    partial.add_model("d", "detection", classes)
    partial.update([r], FrameLabels(truth=truth, classes=("circle",)))  # a set that labels circles only
    full = RollingMonitor(window_frames=10, window_seconds=1e6)
    full.add_model("d", "detection", classes)
    full.update([r], FrameLabels(truth=truth, classes=("circle",), exhaustive=True))  # a person's frame label
    p, f = partial.snapshot()["d"], full.snapshot()["d"]
    assert p["per_class"]["triangle"]["fp"] == 0 and p["precision"] == 1.0   # the triangle cannot be judged
    assert f["per_class"]["triangle"]["fp"] == 1 and f["precision"] == 0.5   # here it is a false positive


def test_labels_without_a_common_class_are_not_scored():
    rolling = RollingMonitor(window_frames=10, window_seconds=1e6)
    rolling.add_model("d", "detection", ("circle",))
    r = ModelResult("d", "detection", ("circle",), detections=_det([[0, 0, 10, 10]], [0.9], [0]))
    rolling.update([r], FrameLabels(truth=GroundTruth(np.array([[0, 0, 9, 9]], np.float32), [0]), classes=("raccoon",)))
    snap = rolling.snapshot()["d"]
    assert snap["frames"] == 0 and snap["unjudged_frames"] == 1 and rolling.labelled_frames == 0


def test_label_ids_follow_names_not_positions():
    # the labels list classes in another order than the model: ids must be matched by name
    rolling = RollingMonitor(window_frames=10, window_seconds=1e6)
    rolling.add_model("d", "detection", ("circle", "square"))
    r = ModelResult("d", "detection", ("circle", "square"), detections=_det([[0, 0, 10, 10]], [0.9], [1]))
    labels = FrameLabels(truth=GroundTruth(np.array([[0, 0, 10, 10]], np.float32), [0]), classes=("square", "circle"))
    rolling.update([r], labels)
    assert rolling.snapshot()["d"]["per_class"]["square"]["tp"] == 1
