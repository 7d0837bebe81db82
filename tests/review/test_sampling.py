"""Sampling that serves labelling: besides 1 in N, the frames where the detector is least sure (a score
near its class threshold) and where a confirmed track found no detection, capped per minute, each saved
with its reasons; the tracker reports such a miss."""
import json
import time

import numpy as np

from edge_app.analytics.tracker import Tracker
from edge_app.config.schema import TrackerConfig
from edge_app.core.types import Detections, Frame, Tracks
from edge_app.inference.models import ModelResult
from edge_app.review.labels import Sampler
from edge_app.review.rolling import RollingMonitor

CLASSES = ("circle", "square")


def _result(scores, missed=0):
    """A frame's detector result, and its tracks beside it (missed: confirmed tracks with no detection)."""
    det = Detections(np.array([[10, 10, 50, 50]] * len(scores), np.float32).reshape(-1, 4), scores, [0] * len(scores))
    return ModelResult("det", "detection", CLASSES, detections=det), {"det": Tracks(np.zeros((0, 4)), [], [], [],
                                                                                   missed=missed)}


def _reasons(folder):
    return sorted((json.loads(p.read_text())["frame"], json.loads(p.read_text())["reasons"]) for p in folder.glob("*.json"))


def test_uncertain_and_disagreeing_frames_are_saved_with_their_reasons_under_a_cap(tmp_path):
    rolling = RollingMonitor()
    rolling.add_model("det", "detection", CLASSES)
    thresholds = np.array([0.5, 0.7], np.float32)
    sampler = Sampler(tmp_path / "s", None, every=1000, max_mb=5, rolling=rolling, uncertain_margin=0.1,
                      disagreements=True, extra_per_minute=3, thresholds=lambda m: thresholds if m == "det" else None)
    frames = [([0.9], 0),     # 0: the 1-in-N frame (every=1000 takes the first)
              ([0.95], 0),    # 1: sure, nothing to learn: not saved
              ([0.55], 0),    # 2: within 0.1 of circle's 0.5: uncertain
              ([0.9], 1),     # 3: a track without a detection: disagree
              ([0.52], 2),    # 4: both
              ([0.51], 0)]    # 5: uncertain, but past the cap of 3 a minute
    for i, (scores, missed) in enumerate(frames):
        result, tracks = _result(scores, missed)
        sampler.on_processed(Frame(np.zeros((60, 80, 3), np.uint8), i, i / 10, time.monotonic()), [result], tracks)
        time.sleep(0.002)  # distinct sample ids (milliseconds)
    assert _reasons(tmp_path / "s") == [(0, ["every"]), (2, ["uncertain"]), (3, ["disagree"]),
                                        (4, ["uncertain", "disagree"])]


def test_the_tracker_reports_a_confirmed_track_that_found_no_detection():
    tracker = Tracker(TrackerConfig(enabled=True, min_hits=1))
    box = np.array([[10, 10, 50, 50]], np.float32)
    assert tracker.update(Detections(box, [0.9], [0]), 0.0).missed == 0
    assert tracker.update(Detections(box + 2, [0.9], [0]), 0.1).missed == 0
    assert tracker.update(Detections(np.zeros((0, 4)), [], []), 0.2).missed == 1   # the detector lost it
    assert tracker.update(Detections(np.zeros((0, 4)), [], []), 0.3).missed == 0   # already lost: not again
