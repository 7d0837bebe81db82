"""Rolling precision/recall: equal to the offline evaluation of the same frames; windows; label inbox."""
import time
from pathlib import Path

import numpy as np
import pytest

from edge_app.core.detection_metrics import DetectionMetrics
from edge_app.core.segmentation_metrics import SegmentationMetrics
from edge_app.core.types import Detections, FrameLabels, GroundTruth, SegMask
from edge_app.datasets import load_image, open_dataset
from edge_app.inference.models import ModelResult, ModelSpec, open_model
from edge_app.labels import Sampler
from edge_app.pipeline import Pipeline, PipelineHooks
from edge_app.rolling import RollingMonitor
from edge_app.sources import CaptureSettings, open_source
from edge_app.synthetic import make_sample, write_dataset
from edge_app.telemetry import Telemetry


def write_synthetic_voc(root: Path, n: int, seed: int = 5) -> Path:
    """A small labelled VOC dataset of synthetic scenes (masks beside it)."""
    return write_dataset(root, n, seed, 320, 240)


def test_rolling_over_a_replay_equals_offline_evaluation(tmp_path, demo_detector):
    data = write_synthetic_voc(tmp_path / "voc", 24)
    model = open_model(ModelSpec("det", "detector", demo_detector, score_threshold=0.3))
    rolling = RollingMonitor(iou=0.5, window_frames=1000, window_seconds=1e6)
    rolling.add_model("det", "detection", model.classes)
    seen: list[str] = []
    hooks = PipelineHooks(on_processed=lambda frame, results: seen.append(frame.name))
    source = open_source(f"replay://{data}", CaptureSettings(fps=8, loop=False))
    pipe = Pipeline(source, [model], [], rolling, Telemetry(), hooks, hud=False)
    pipe.start()
    t0 = time.monotonic()
    while source.stats.state != "ended" and time.monotonic() - t0 < 30:
        time.sleep(0.1)
    time.sleep(0.5)
    pipe.stop()
    assert len(seen) == 24, f"frames were dropped: {len(seen)}"
    live = rolling.snapshot()["det"]

    # offline: the dataset's own labels, the same model code, a whole-dataset metric
    ds = open_dataset(data)
    offline = DetectionMetrics(len(model.classes), iou_thresholds=(0.5,))
    names = {n: i for i, n in enumerate(model.classes)}
    for s in ds.samples:
        det = model.predict(load_image(s.image_path)).detections
        gt = GroundTruth(s.truth.boxes, [names[ds.classes[c]] for c in s.truth.classes])
        offline.update(det, gt)
    r = offline.compute()
    overall = r.overall()
    assert live["frames"] == 24
    assert live["precision"] == pytest.approx(overall["precision"], abs=1e-6)
    assert live["recall"] == pytest.approx(overall["recall"], abs=1e-6)
    for i, c in enumerate(model.classes):
        assert live["per_class"][c]["tp"] == r.tp[i] and live["per_class"][c]["fp"] == r.fp[i]
    assert overall["tp"] > 0  # the demo detector finds shapes: the comparison is not vacuous


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


def test_calibration_report_equals_rolling_over_the_same_frames(tmp_path, demo_detector):
    """calibrate's numbers at the runtime's operating point equal the runtime's rolling P/R."""
    from calibration.evaluate import open_for_eval, run_detection
    data = write_synthetic_voc(tmp_path / "voc", 16, seed=11)
    live_model = open_model(ModelSpec("det", "detector", demo_detector, precision="fp32", score_threshold=0.3,
                                      nms_iou=0.5))  # the same file as offline below
    rolling = RollingMonitor(iou=0.5, window_frames=1000, window_seconds=1e6)
    rolling.add_model("det", "detection", live_model.classes)
    ds = open_dataset(data)
    for s in ds.samples:  # the frames the runtime saw, with the labels the replay attaches
        from edge_app.core.types import FrameLabels
        rolling.update([live_model.predict(load_image(s.image_path))],
                       FrameLabels(truth=s.truth, classes=ds.classes))
    live = rolling.snapshot()["det"]
    run = run_detection(open_for_eval(demo_detector), ds, progress=False)
    offline = run.report(iou_thresholds=(0.5,), score_threshold=0.3).overall()
    assert live["precision"] == pytest.approx(offline["precision"], abs=1e-6)  # the status rounds to 6 places
    assert live["recall"] == pytest.approx(offline["recall"], abs=1e-6)
    assert sum(c["tp"] for c in live["per_class"].values()) == offline["tp"] > 0
    assert sum(c["fp"] for c in live["per_class"].values()) == offline["fp"]
