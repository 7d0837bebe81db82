"""Tracking live: the demo detector + tracker on the synthetic scene (objects with true identities that
cross, hide each other, enter and leave); the rolling window's MOTA / IDF1 / ID switches equal TrackEval's
on the very same frames, and the counting line's truth counts come with the tracks' counts. A MOTChallenge
sequence with frames replays with its identities."""
import time

import numpy as np
import pytest

from edge_app.analytics.counting import Analytics
from edge_app.config.schema import AnalyticsConfig, LineConfig, TrackerConfig
from edge_app.inference.models import ModelSpec, open_model
from edge_app.streams.pipeline import Pipeline, PipelineHooks
from edge_app.review.rolling import RollingMonitor
from edge_app.sources.synthetic import SyntheticSource
from edge_app.streams.telemetry import Telemetry

pytestmark = pytest.mark.slow


def _mot_lines(frames, boxes_ids):
    lines = []
    for f, (boxes, ids) in zip(frames, boxes_ids):
        for (x1, y1, x2, y2), i in zip(np.asarray(boxes, float).reshape(-1, 4), ids):
            lines.append(f"{f},{int(i)},{x1:.3f},{y1:.3f},{x2 - x1:.3f},{y2 - y1:.3f},1,-1,-1,-1")
    return "\n".join(lines) + "\n"


def test_rolling_tracking_metrics_equal_trackeval_on_the_same_frames(tmp_path, demo_detector):
    pytest.importorskip("trackeval")
    from calibration.tracks import evaluate_tracks

    n = 150
    model = open_model(ModelSpec("det", "detector", demo_detector, precision="fp32"))
    line = LineConfig(name="middle", points=((320.0, 40.0), (320.0, 440.0)))
    analytics = Analytics(AnalyticsConfig(lines=(line,)), {"det": TrackerConfig(enabled=True)}, 640, 480)
    rolling = RollingMonitor(iou=0.5, window_frames=10_000, window_seconds=1e6)
    rolling.add_model("det", "detection", model.classes)
    seen = []
    hooks = PipelineHooks(on_processed=lambda frame, results, tracks: seen.append((frame, tracks[results[0].name])))
    source = SyntheticSource("synthetic://", width=640, height=480, fps=15, seed=4, max_frames=n, realtime=False)
    pipe = Pipeline(source, [model], [], rolling, Telemetry(), hooks, hud=False, analytics=analytics)
    pipe.start()
    deadline = time.monotonic() + 120
    while len(seen) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    pipe.stop()
    assert len(seen) == n
    live = rolling.snapshot()["det"]["tracking"]
    gt = tmp_path / "gt.txt"
    tracks = tmp_path / "tracks.txt"
    gt.write_text(_mot_lines(range(1, n + 1), [(f.labels.truth.boxes, f.labels.ids) for f, _ in seen]))
    tracks.write_text(_mot_lines(range(1, n + 1), [(t.boxes, t.ids) for _, t in seen]))
    ref = evaluate_tracks(gt, tracks, benchmark="MOT15")
    assert live["frames"] == n and live["GT"] == sum(len(f.labels.ids) for f, _ in seen)
    assert live["MOTA"] == pytest.approx(ref["MOTA"], abs=1e-6)
    assert live["IDF1"] == pytest.approx(ref["IDF1"], abs=1e-6)
    assert live["IDSW"] == ref["IDSW"]
    assert ref["IDF1"] > 0.5  # the demo tracks the shapes: the comparison is not vacuous
    a = analytics.snapshot()["lines"]["middle"]
    assert a["truth_in"] + a["truth_out"] > 0  # the scene's objects crossed the line
    assert abs((a["total_in"] + a["total_out"]) - (a["truth_in"] + a["truth_out"])) <= 2  # tracks counted them


def test_a_mot_sequence_replays_with_its_identities(shared_data):
    from edge_app.config.schema import SourceConfig
    from edge_app.datasets import open_dataset
    from edge_app.sources import open_source
    from tests.gst_helpers import read_frames

    seq = shared_data / "mot" / "MOT17-09-FRCNN-mini"
    if not seq.is_dir():
        pytest.skip(f"{seq} not found")
    ds = open_dataset(seq)
    src = open_source(SourceConfig(f"replay://{seq}", width=960, height=540, fps=30, loop=False, realtime=False)).start()
    try:
        frames = read_frames(src, 3.0)
    finally:
        src.stop()
    assert len(frames) == len(ds) == 4
    gt = (seq / "gt" / "gt.txt").read_text().splitlines()
    want = sorted(int(r.split(",")[1]) for r in gt if r.split(",")[0] == "1" and r.split(",")[7] in ("1", "2", "7", "8", "12")
                  and not (r.split(",")[7] == "1" and r.split(",")[6] == "0"))
    assert sorted(frames[0].labels.ids.tolist()) == want
    assert frames[0].image.shape == (540, 960, 3)
    # boxes scaled with the frame (1920 -> 960), in the order of the dataset's own frame 1
    np.testing.assert_allclose(frames[0].labels.truth.boxes, ds.samples[0].truth.boxes * 0.5, rtol=1e-6)
