"""Tiled inference and class groups: the grid covers the frame, an object cut by a tile edge comes back
as one box, classes of one group are one object in NMS and in the tracker, and the config's tiles, roi
and class groups are checked (one error naming the key and what was expected, per bad value)."""
from pathlib import Path

import numpy as np
import pytest

from edge_app.analytics.tracker import Tracker
from edge_app.config import ConfigError, load_config
from edge_app.core.class_names import COCO80
from edge_app.core.nms import postprocess_detections
from edge_app.core.types import Detections
from edge_app.decoders.detection import group_ids
from edge_app.decoders.merge import merge_tiles
from edge_app.frames.tiles import TileSpec, tile_rects

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("w, h, spec, count", [
    (1920, 1080, TileSpec(3, 2, 0.2, False), 6), (1920, 1080, TileSpec(3, 2, 0.2, True), 7),
    (640, 480, TileSpec(2, 2, 0.0, False), 4), (640, 480, TileSpec(1, 1), 1)])
def test_tiles_cover_the_frame_with_the_overlap_asked(w, h, spec, count):
    rects = tile_rects(w, h, spec)
    assert len(rects) == count
    cover = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in rects:
        cover[y0:y1, x0:x1] = True
    assert cover.all()
    if spec.cols > 1:
        a, b = rects[0], rects[1]
        assert abs((a[2] - b[0]) / (a[2] - a[0]) - spec.overlap) < 0.01  # neighbours overlap as asked


def test_a_tile_without_roi_is_not_run():
    rects = tile_rects(1000, 1000, TileSpec(2, 2, 0.0, False, roi=(((0.6, 0.6), (0.9, 0.6), (0.9, 0.9)),)))
    assert rects.tolist() == [[500, 500, 1000, 1000]]


def test_an_object_cut_by_a_tile_edge_comes_back_as_one_box_and_roi_drops_outside():
    rects = np.array([[0, 0, 600, 1000], [400, 0, 1000, 1000]])
    # a person at x 550..700: the left tile sees 550..600 (cut at its edge), the right one all of it
    left = Detections([[550, 100, 600, 400]], [0.6], [0])
    right = Detections([[548, 102, 700, 398], [800, 100, 900, 300]], [0.8, 0.9], [0, 0])
    out = merge_tiles([left, right], rects, (1000, 1000), 0.5, None, 100)
    assert len(out) == 2 and np.allclose(sorted(out.boxes[:, 0]), [548, 800])
    roi = (np.array([[0, 0], [750, 0], [750, 1000], [0, 1000]], float),)
    assert len(merge_tiles([left, right], rects, (1000, 1000), 0.5, None, 100, roi)) == 1
    # two people side by side, neither cut by an edge, are never fused
    apart = merge_tiles([Detections([[100, 100, 200, 400]], [0.9], [0]), Detections([[150, 100, 250, 400]], [0.8], [0])],
                        rects, (1000, 1000), 0.5, None, 100)
    assert len(apart) == 2


def test_car_and_truck_of_one_vehicle_are_one_object_in_nms_and_one_track():
    groups = group_ids(COCO80, {"vehicle": ["car", "truck", "bus", "motorcycle"]})
    car, truck = COCO80.index("car"), COCO80.index("truck")
    scores = np.zeros((2, 80), np.float32)
    scores[0, car], scores[1, truck] = 0.7, 0.6
    boxes = np.array([[10, 10, 110, 60], [12, 11, 111, 62]], np.float32)
    assert len(postprocess_detections(boxes, scores, iou_threshold=0.5, score_threshold=0.3)) == 2  # class-wise: both
    one = postprocess_detections(boxes, scores, iou_threshold=0.5, score_threshold=0.3, groups=groups)
    assert len(one) == 1 and one.classes[0] == car
    tracker = Tracker(groups=groups)
    for t in range(6):  # the detector flips between car and truck on the same vehicle
        cls = car if t % 2 else truck
        tracks = tracker.update(Detections([[10 + t, 10, 110 + t, 60]], [0.9], [cls]), t * 0.1)
    assert len(tracks) == 1 and tracker.confirmed_total == 1
    with pytest.raises(ValueError, match=r"class_groups.vehicle names \['lorry'\]"):
        group_ids(COCO80, {"vehicle": ["car", "lorry"]})


def test_keep_reports_only_the_classes_kept_whatever_their_score(tmp_path):
    """A COCO model on a parking lot: its kites and cell phones are never reported when keep names
    person and the vehicle group (the group stands for its classes); thresholds reloaded keep the rule."""
    from edge_app.core.artifact import read_meta
    from edge_app.decoders.detection import DetectionDecoder

    meta = read_meta(ROOT / "edge_app" / "demo" / "coco.onnx", verify_checksum=False)
    decoder = DetectionDecoder(meta, score_threshold=0.3, class_groups={"vehicle": ["car", "truck"]},
                               keep=("person", "vehicle"))
    kept = {meta.classes[i] for i in np.flatnonzero(np.isfinite(decoder.score_thresholds))}
    assert kept == {"person", "car", "truck"}
    decoder.set_thresholds({"person": 0.2, "kite": 0.1})        # a thresholds file naming a dropped class
    assert np.isinf(decoder.score_thresholds[meta.classes.index("kite")])
    assert decoder.score_thresholds[meta.classes.index("person")] == np.float32(0.2)
    with pytest.raises(ValueError, match="keep names"):
        DetectionDecoder(meta, keep=("unicorn",))


BASE = """
[source]
uri = "synthetic://"
width = 640
height = 480
[models.coco]
kind = "detector"
artifact = "{artifact}"
{extra}
"""


@pytest.mark.parametrize("extra, message", [
    ("tiles = [40, 2]", "models.coco.tiles = [40, 2]: tiles of 20x267 px on 640x480 frames; expected tiles of at least 32x32"),
    ("tiles = [3, 2]\noverlap = 0.95", "models.coco.overlap = 0.95: expected a value <= 0.9"),
    ("tiles = [3, 2]\noverlap = -0.1", "models.coco.overlap = -0.1: expected a value >= 0"),
    ("tiles = [0, 2]", "models.coco.tiles = [0, 2]: expected [cols, rows], each at least 1"),
    ("roi = [[[0, 0], [700, 0], [700, 100]]]", "models.coco.roi[0]: points [[700.0, 0.0], [700.0, 100.0]] outside the 640x480 frame"),
    ("roi = [[[0, 0], [1.2, 0], [1, 1]]]\nroi_units = \"normalized\"", "models.coco.roi[0]: points [[768.0, 0.0]] outside"),
    ("class_groups = {vehicle = [\"car\", \"lorry\"]}", "models.coco.class_groups.vehicle = ['car', 'lorry']: ['lorry'] are not classes of"),
    ("keep = [\"person\", \"vehicles\"]", "models.coco.keep = ['person', 'vehicles']: ['vehicles'] are neither classes of"),
])
def test_bad_tiles_roi_and_class_groups_are_named(tmp_path, extra, message):
    path = tmp_path / "c.toml"
    path.write_text(BASE.format(artifact=ROOT / "edge_app" / "demo" / "coco.onnx", extra=extra))
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert any(message in p for p in e.value.problems), e.value.problems
    assert len(e.value.problems) == 1, e.value.problems
