"""Lines and zones on constructed tracks (the complaints of other tools' users, each a case): a crossing
counts once, only through the segment itself, only for a track seen on both sides; jitter on the line
does not inflate; zones count occupancy, entries, exits and dwell. Bad geometry is a config error."""
import textwrap

import numpy as np
import pytest

from edge_app.analytics.counting import Analytics
from edge_app.config import ConfigError, load_config
from edge_app.config.schema import AnalyticsConfig, LineConfig, TrackerConfig, ZoneConfig
from edge_app.core.types import Detections
from edge_app.inference.models import ModelResult

W, H = 640, 480


def _analytics(lines=(), zones=(), min_hits=1, anchor="center"):
    cfg = AnalyticsConfig(anchor=anchor, lines=tuple(lines), zones=tuple(zones))
    return Analytics(cfg, {"det": TrackerConfig(enabled=True, min_hits=min_hits)}, W, H)


def _box(cx, cy, half=15):
    return [cx - half, cy - half, cx + half, cy + half]


def _run(an, paths, classes=("person", "car"), fps=30.0, cls=None):
    """paths: per frame a list of (cx, cy) of each object (None = not detected)."""
    for f, points in enumerate(paths):
        boxes = [_box(*p) for p in points if p is not None]
        c = [(cls or [0] * len(points))[i] for i, p in enumerate(points) if p is not None]
        det = Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9), c)
        r = ModelResult("det", "detection", classes, detections=det)
        an.update([r], f / fps)
    return an.snapshot()


HLINE = LineConfig(name="door", points=((100.0, 240.0), (540.0, 240.0)))  # left to right: "in" = upwards


def test_a_crossing_counts_once_in_its_direction():
    snap = _run(_analytics([HLINE]), [[(320, 300 - 4 * f)] for f in range(40)])  # walking up through it
    assert snap["lines"]["door"]["in"] == {"person": 1} and snap["lines"]["door"]["total_out"] == 0
    snap = _run(_analytics([HLINE]), [[(320, 180 + 4 * f)] for f in range(40)])  # and down
    assert snap["lines"]["door"]["out"] == {"person": 1} and snap["lines"]["door"]["total_in"] == 0


def test_jitter_on_the_line_does_not_inflate_the_count():
    ys = [250, 236, 244, 238, 243, 237, 245, 236, 250, 230, 220, 210]  # ten sign changes around y = 240
    snap = _run(_analytics([HLINE]), [[(320, y)] for y in ys])
    # the margin (0.3 of the 30 px box: 9 px) leaves the one real crossing, upwards
    assert snap["lines"]["door"]["total_in"] == 1 and snap["lines"]["door"]["total_out"] == 0
    bare = LineConfig(name="door", points=HLINE.points, margin=0.0)  # without it: still once per direction
    snap = _run(_analytics([bare]), [[(320, y)] for y in ys])
    assert snap["lines"]["door"]["total_in"] == 1 and snap["lines"]["door"]["total_out"] == 1


def test_passing_the_lines_extension_does_not_count():
    snap = _run(_analytics([HLINE]), [[(600, 300 - 4 * f)] for f in range(40)])  # x = 600: beyond the end
    assert snap["lines"]["door"]["total_in"] == 0


def test_a_track_first_seen_past_the_line_does_not_count():
    # an id change at the line: the object's new track starts on the far side
    paths = [[(320, 300 - 4 * f)] if f < 14 else [] for f in range(16)]     # stops short of it (y 248)
    paths += [[(320 - 200, 200 - 4 * f)] for f in range(10)]                   # elsewhere, already above
    snap = _run(_analytics([HLINE]), paths)
    assert snap["lines"]["door"]["total_in"] == 0


def test_unconfirmed_tracks_never_count():
    # a detection that flickers (never three frames running) is never a track, wherever it is
    paths = [[(320, 300 - 10 * f) if f % 2 == 0 else None] for f in range(16)]
    snap = _run(_analytics([HLINE], min_hits=3), paths)
    assert snap["lines"]["door"]["total_in"] == 0 and snap["trackers"]["det"]["confirmed_total"] == 0


def test_classes_are_counted_apart_and_filtered():
    line = LineConfig(name="door", points=((100.0, 240.0), (540.0, 240.0)), classes=("car",))
    paths = [[(200, 300 - 4 * f), (400, 300 - 4 * f)] for f in range(40)]
    snap = _run(_analytics([HLINE, LineConfig(name="cars", points=line.points, classes=("car",))]), paths, cls=[0, 1])
    assert snap["lines"]["door"]["in"] == {"person": 1, "car": 1} and snap["lines"]["cars"]["in"] == {"car": 1}


def test_zone_occupancy_entries_exits_and_dwell():
    zone = ZoneConfig(name="shelf", points=((200.0, 100.0), (440.0, 100.0), (440.0, 380.0), (200.0, 380.0)))
    an = _analytics(zones=[zone])
    # one object walks through in 1 s (30 frames inside), another stays inside
    paths = [[(150 + 8 * f, 240), (320, 240)] for f in range(50)]
    snap = _run(an, paths)
    z = snap["zones"]["shelf"]
    assert z["entries"] == {"person": 2} and z["exits"] == {"person": 1} and z["occupancy"] == {"person": 1}
    assert z["dwell_mean_s"] == pytest.approx(30 / 30, abs=2 / 30)


def test_a_looping_file_restarts_tracks_but_keeps_counts():
    an = _analytics([HLINE])
    _run(an, [[(320, 300 - 4 * f)] for f in range(40)])
    snap = _run(an, [[(320, 300 - 4 * f)] for f in range(40)])  # time starts at 0 again: the file looped
    assert snap["restarts"] == 1 and snap["lines"]["door"]["total_in"] == 2


def _cfg(tmp_path, analytics, tracker=True):
    (tmp_path / "m.onnx").write_bytes(b"x")
    text = f"""
    [models.det]
    kind = "detector"
    artifact = "m.onnx"
    [models.det.tracker]
    enabled = {str(tracker).lower()}
    {analytics}
    """
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("analytics, message", [
    ('[[analytics.zones]]\nname = "z"\npoints = [[0, 0], [10, 10]]', "analytics.zones[0].points: a zone needs at least 3 points"),
    ('[[analytics.zones]]\nname = "z"\npoints = [[0, 0], [100, 100], [100, 0], [0, 100]]',
     "analytics.zones[0].points: the polygon crosses itself"),
    ('[[analytics.lines]]\nname = "l"\npoints = [[5, 5], [5, 5]]', "analytics.lines[0].points = [[5.0, 5.0], [5.0, 5.0]]: a zero-length line"),
    ('[[analytics.lines]]\nname = "l"\npoints = [[0, 0], [700, 10]]', "analytics.lines[0].points: [[700.0, 10.0]] outside the 640x480 frame"),
    ('[[analytics.lines]]\nname = "l"\nunits = "normalized"\npoints = [[0, 0], [1.5, 1]]', "outside 0..1"),
    ('[[analytics.lines]]\nname = "l"\npoints = [[0, 0], [10, 10], [20, 20]]', "a line is 2 points"),
    ('[[analytics.lines]]\nname = "a b"\npoints = [[0, 0], [10, 10]]', "analytics.lines[0].name = 'a b'"),
    ('[[analytics.lines]]\nname = "x"\npoints = [[0, 0], [10, 10]]\n[[analytics.zones]]\nname = "x"\npoints = [[0, 0], [9, 0], [9, 9]]',
     "analytics.zones[0].name = 'x': another line or zone has this name"),
    ('[[analytics.lines]]\nname = "l"\nmodel = "seg"\npoints = [[0, 0], [10, 10]]', "analytics.lines[0].model = 'seg'"),
])
def test_bad_geometry_is_a_config_error_naming_the_key(tmp_path, analytics, message):
    with pytest.raises(ConfigError) as info:
        load_config(_cfg(tmp_path, analytics))
    assert any(message in p for p in info.value.problems), info.value.problems


def test_lines_without_a_tracked_detector_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="enable a detector's tracker"):
        load_config(_cfg(tmp_path, '[[analytics.lines]]\nname = "l"\npoints = [[0, 0], [10, 10]]', tracker=False))


def _run_boxes(an, boxes_per_frame, fps=30.0, first=0):
    """boxes_per_frame: per frame a list of xyxy boxes (one object each, detected every frame)."""
    for f, boxes in enumerate(boxes_per_frame, first):
        det = Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9), [0] * len(boxes))
        an.update([ModelResult("det", "detection", ("person",), detections=det)], f / fps)
    return an.snapshot()


def _person(x, feet_y, h=120.0, w=50.0):
    return [x - w / 2, feet_y - h, x + w / 2, feet_y]


SHELF = ZoneConfig(name="shelf", points=((200.0, 100.0), (440.0, 100.0), (440.0, 380.0), (200.0, 380.0)))


def test_a_still_person_on_a_zones_edge_neither_enters_nor_leaves():
    # feet on the zone's left edge (x = 200), jittering 6 px across it every frame, for 10 s: the
    # hysteresis (a margin of 10 % of the 120 px box, 1 s on one side) holds the state
    an = _analytics(zones=[SHELF], anchor="bottom_center")
    walk_up = [[_person(100 + 5 * f, 300)] for f in range(20)]                     # from outside to the edge
    stand = [[_person(200 + (6 if f % 2 else -6) + (f % 3), 300)] for f in range(300)]
    snap = _run_boxes(an, walk_up + stand)
    z = snap["zones"]["shelf"]
    assert z["entries"] == {} and z["exits"] == {} and z["total"] == 0
    snap = _run_boxes(an, [[_person(200 + 4 * f, 300)] for f in range(30)], first=320)  # then walks in
    assert snap["zones"]["shelf"]["entries"] == {"person": 1}


def test_without_hysteresis_the_same_jitter_flickers():
    # the same scene with margin 0 and settle_s 0 counts every jitter: what the hysteresis removes
    zone = ZoneConfig(name="shelf", points=SHELF.points, margin=0.0, settle_s=0.0)
    an = _analytics(zones=[zone], anchor="bottom_center")
    snap = _run_boxes(an, [[_person(200 + (6 if f % 2 else -6), 300)] for f in range(60)])
    assert sum(snap["zones"]["shelf"]["entries"].values()) > 10


def test_a_zone_touching_the_frames_edge_holds_a_person_cut_by_it():
    # the zone reaches the bottom of the frame; a person standing at the bottom has its box cut there,
    # so its anchor lies on the zone's bottom edge: inside, steadily (not flickering on the edge)
    zone = ZoneConfig(name="hall", points=((300.0, 60.0), (560.0, 60.0), (560.0, 480.0), (300.0, 480.0)))
    an = _analytics(zones=[zone], anchor="bottom_center")
    frames = [[[400 + (f % 3), 300, 450 + (f % 3), 480 + (1 if f % 2 else 0)]] for f in range(150)]
    snap = _run_boxes(an, frames)
    z = snap["zones"]["hall"]
    assert z["entries"] == {"person": 1} and z["exits"] == {} and z["total"] == 1


def test_zone_hysteresis_keys_are_checked(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(_cfg(tmp_path, '[[analytics.zones]]\nname = "z"\nmargin = -1\npoints = [[0, 0], [9, 0], [9, 9]]'))
    assert any("analytics.zones[0].margin" in p for p in info.value.problems), info.value.problems


def test_feet_jittering_along_a_line_never_count():
    # a person walks along the line (x from 120 to 520) with feet 4 px above or below it at random: the
    # detection box breathes. With the margin (30 % of the 120 px box) nothing counts; without, it does.
    rng = np.random.default_rng(3)
    jitter = rng.choice([-4.0, 4.0], 100)
    frames = [[_person(120 + 4 * f, 240 + jitter[f])] for f in range(100)]
    snap = _run_boxes(_analytics([HLINE], anchor="bottom_center"), frames)
    assert snap["lines"]["door"]["total_in"] == 0 and snap["lines"]["door"]["total_out"] == 0
    bare = LineConfig(name="door", points=HLINE.points, margin=0.0)
    snap = _run_boxes(_analytics([bare], anchor="bottom_center"), frames)
    assert snap["lines"]["door"]["total_in"] == 1 and snap["lines"]["door"]["total_out"] == 1


def test_a_real_crossing_still_counts_with_the_margin():
    snap = _run_boxes(_analytics([HLINE], anchor="bottom_center"), [[_person(320, 330 - 6 * f)] for f in range(30)])
    assert snap["lines"]["door"]["in"] == {"person": 1} and snap["lines"]["door"]["total_out"] == 0
