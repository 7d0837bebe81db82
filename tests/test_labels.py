"""A labels file of a recorded video stays on its frames: frames of a file are numbered by stream
position, so neither appsink drops under load nor looping shifts which label a frame is scored with."""
import json
import time

import cv2
import numpy as np
import pytest

from edge_app.config.schema import SourceConfig
from edge_app.core.types import Detections
from edge_app.inference.models import ModelResult
from edge_app.review.labels import LabelsFile
from edge_app.streams.stream import PipelineHooks
from edge_app.streams.pipeline import Pipeline
from edge_app.review.rolling import RollingMonitor
from edge_app.sources import open_source
from edge_app.streams.telemetry import Telemetry
from tests.gst_helpers import require_gst

pytestmark = pytest.mark.slow
W, H, N, FPS, SIDE = 640, 400, 50, 10, 36


def _box(i: int) -> list[float]:
    """Frame i's square: a different cell of a 10 x 5 grid each frame, so a label one frame off never
    overlaps (IoU 0)."""
    x, y = 20 + (i % 10) * 60, 20 + (i // 10) * 75
    return [x, y, x + SIDE, y + SIDE]


def _video(path):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    assert writer.isOpened(), "OpenCV cannot write mp4v here"
    for i in range(N):
        img = np.zeros((H, W, 3), np.uint8)
        x1, y1, x2, y2 = (int(v) for v in _box(i))
        img[y1:y2, x1:x2] = 255
        writer.write(img)
    writer.release()


class BrightSquare:
    """A real (classical) detector for the test clip: the bright region's bounding box. Slow on purpose
    (a busy device), so the appsink drops frames while the file plays in real time."""

    name, task, classes = "square", "detection", ("square",)

    def predict(self, image):
        time.sleep(0.17)
        mask = (image.max(axis=2) > 128).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        boxes = [[x, y, x + w, y + h] for x, y, w, h, area in stats[1:] if area > 100]
        det = Detections(np.array(boxes, np.float32).reshape(-1, 4), np.ones(len(boxes)), np.zeros(len(boxes)))
        return ModelResult(self.name, self.task, self.classes, detections=det)


def test_labels_file_follows_a_looping_video_under_load(tmp_path):
    require_gst()
    video = tmp_path / "clip.mp4"
    _video(video)
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({
        "images": [{"id": i, "file_name": f"{i}.png", "width": W, "height": H} for i in range(N)],
        "annotations": [{"id": i + 1, "image_id": i, "category_id": 1, "iscrowd": 0, "area": SIDE * SIDE,
                         "bbox": [_box(i)[0], _box(i)[1], SIDE, SIDE]} for i in range(N)],
        "categories": [{"id": 1, "name": "square"}]}))
    rolling = RollingMonitor(iou=0.5, window_frames=10_000, window_seconds=1e6)
    rolling.add_model("square", "detection", ("square",))
    seen = []
    hooks = PipelineHooks.for_labels(LabelsFile.open(labels), None)
    hooks.on_processed = lambda frame, results, tracks: seen.append(frame.index)
    source = open_source(SourceConfig(f"file://{video}", width=W, height=H, loop=True, realtime=True))
    pipe = Pipeline(source, [BrightSquare()], [], rolling, Telemetry(), hooks, hud=False)
    pipe.start()
    try:
        deadline = time.monotonic() + 40
        while source.stats.loops < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        pipe.stop()
    snap = rolling.snapshot()["square"]
    assert source.stats.loops >= 2, source.stats  # the clip played at least twice
    assert source.stats.dropped > 10              # under load: the appsink dropped frames
    assert sum(b < a for a, b in zip(seen, seen[1:])) >= 2  # frame numbers started again at each loop
    assert len(set(seen)) < len(seen)             # the same frame numbers came round again
    assert snap["frames"] >= 20
    # every scored frame was matched with its own label (a drifted label would miss: IoU 0)
    assert snap["precision"] == 1.0 and snap["recall"] == 1.0, snap
