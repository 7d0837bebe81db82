"""Tiles of a frame and frames of several streams through a backend three ways (one call, one call per
image, calls in flight): the same detections each way, on both CPU backends; runtime.batching = "auto"
measures the three and keeps one, reopening the backend with calls in flight where that wins."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_app.backends import installed
from edge_app.inference import dispatch
from edge_app.inference.models import open_artifact
from edge_app.frames.tiles import TileSpec

DEMO = Path(__file__).resolve().parents[2] / "edge_app" / "demo"
BACKENDS = ["onnxruntime"] + (["openvino"] if installed("openvino") else [])


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(DEMO / "people.mp4"))
    out = []
    for i in range(60):
        ok, image = cap.read()
        if ok and i % 20 == 19:
            out.append(image)
    cap.release()
    return out


def _same(a, b) -> None:
    assert len(a.boxes) == len(b.boxes)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=0.05)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    np.testing.assert_array_equal(a.classes, b.classes)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_tiled_frame_gives_the_same_detections_each_way(backend, frames):
    model = open_artifact(DEMO / "coco.onnx", backend=backend, tiles=TileSpec(3, 2), score_threshold=0.3, requests=2)
    assert model.tiled and model.max_batch is None
    results = {}
    for mode in dispatch.MODES:
        model.mode = mode
        results[mode] = model.predict(frames[0]).detections
    assert len(results["batch"].boxes) > 0
    _same(results["frames"], results["batch"])
    _same(results["requests"], results["batch"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_frames_of_several_streams_give_their_own_detections_each_way(backend, frames):
    model = open_artifact(DEMO / "coco.onnx", backend=backend, score_threshold=0.3, requests=2)
    alone = [model.predict(f).detections for f in frames]
    for mode in dispatch.MODES:
        model.mode = mode
        for mine, ref in zip(model.predict_batch(frames), alone):
            _same(mine.detections, ref)


@pytest.mark.parametrize("backend", BACKENDS)
def test_auto_measures_the_modes_and_keeps_one(backend, frames):
    model = open_artifact(DEMO / "coco.onnx", backend=backend, tiles=TileSpec(3, 2), score_threshold=0.3)
    assert getattr(model.backend, "requests", 1) == 1
    t = model.measure_modes(2, rounds=1)
    assert t["images"] == 7 and set(t) >= {"frames", "batch", "requests", "mode"}  # 3x2 tiles + the frame
    assert all(t[m] > 0 for m in dispatch.MODES)
    assert model.mode == t["mode"]
    # "requests" kept: the backend now has calls in flight; otherwise the spare one was closed
    assert (getattr(model.backend, "requests", 1) >= 2) == (t["mode"] == "requests")
    assert model.predict(frames[0]).detections is not None


def test_choose_keeps_one_call_per_image_unless_another_way_is_clearly_faster():
    assert dispatch.choose({"frames": 1.0, "batch": 0.97, "requests": 0.99}) == "frames"
    assert dispatch.choose({"frames": 1.0, "batch": 0.80, "requests": 0.90}) == "batch"
    assert dispatch.choose({"frames": 1.0, "batch": 1.20, "requests": 0.70}) == "requests"
    assert dispatch.candidates(1, 2) == ["frames", "requests"] and dispatch.candidates(None, 1) == ["frames", "batch"]
