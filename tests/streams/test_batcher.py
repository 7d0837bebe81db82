"""The batcher in one process with real sources and real ONNX Runtime sessions: a batch gives each frame the
result it gets alone, no stream starves when there are more streams than the batch holds, a fault on one
stream's frames costs only that frame, streams come and go while it runs."""
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from edge_app.inference.models import ModelResult, open_artifact
from edge_app.review.rolling import RollingMonitor
from edge_app.sources.synthetic import SyntheticSource
from edge_app.streams.batcher import Batcher
from edge_app.streams.stream import Stream
from edge_app.streams.telemetry import Telemetry

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "edge_app" / "demo"


@pytest.fixture(scope="module")
def dynamic_detector(tmp_path_factory):
    from conversion.batch_axis import dynamic_family

    folder = tmp_path_factory.mktemp("dyn")
    for f in DEMO.glob("detector.*"):
        shutil.copy(f, folder / f.name)
    dynamic_family(folder / "detector.onnx")
    return folder / "detector.onnx"


def frames(n: int, seed: int = 3) -> list[np.ndarray]:
    from edge_app.datasets.synthetic import make_sample
    rng = np.random.default_rng(seed)
    return [make_sample(rng, 640, 480).image for _ in range(n)]


def test_a_batch_gives_each_frame_its_own_result(dynamic_detector):
    batched = open_artifact(dynamic_detector, score_threshold=0.2)
    alone = open_artifact(DEMO / "detector.onnx", score_threshold=0.2)  # the shipped fixed-batch file: the reference
    assert batched.max_batch is None and alone.max_batch == 1
    images = frames(5)
    many = batched.predict_batch(images)
    assert len(many) == 5
    found = 0
    for image, r in zip(images, many):
        ref = alone.predict(image)
        found += len(ref.detections.boxes)
        np.testing.assert_allclose(r.detections.boxes, ref.detections.boxes, atol=1e-3)
        np.testing.assert_allclose(r.detections.scores, ref.detections.scores, atol=1e-5)
        np.testing.assert_array_equal(r.detections.classes, ref.detections.classes)
    assert found >= 5
    # a fixed-batch artifact runs frame by frame through the same call
    assert [len(r.detections.boxes) for r in alone.predict_batch(images)] == [len(r.detections.boxes) for r in many]


def _stream(name: str, seed: int, models, realtime: bool = False) -> Stream:
    source = SyntheticSource(f"synthetic://?seed={seed}", width=320, height=240, fps=30, seed=seed, realtime=realtime)
    return Stream(name, source, [], RollingMonitor(), Telemetry(), hud=False, models=models)


def _run(batcher: Batcher, streams: list[Stream], seconds: float) -> None:
    for s in streams:
        s.start()
    batcher.start()
    time.sleep(seconds)
    batcher.stop()
    for s in streams:
        s.stop()


def test_more_streams_than_the_batch_holds_none_starves(dynamic_detector):
    model = open_artifact(dynamic_detector)
    batcher = Batcher([model], Telemetry(), max_batch=2, batch_timeout_s=0.005)
    streams = [_stream(f"s{i}", i + 1, [model]) for i in range(4)]
    for s in streams:
        batcher.add(s)
    _run(batcher, streams, 4.0)
    done = [s.telemetry.counters["frames_in"] for s in streams]
    assert min(done) > 5, done
    assert min(done) / max(done) >= 0.8, done  # round-robin: every frame waited for equally
    assert set(batcher.batch_sizes) <= {1, 2} and batcher.batch_sizes[2] > 0


class FailsOnDark:
    """A model that raises on dark frames (a corrupt frame, a backend hiccup)."""

    name, task, classes = "picky", "detection", ("thing",)

    def predict(self, image: np.ndarray) -> ModelResult:
        if image.mean() < 40:
            raise ValueError("cannot read this frame")
        from edge_app.core.types import Detections
        return ModelResult(self.name, "detection", self.classes,
                           detections=Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int)))

    def predict_batch(self, images):
        return [self.predict(i) for i in images]


class Dark(SyntheticSource):
    def _run(self) -> None:  # every frame black
        from edge_app.core.types import Frame
        i = 0
        while not self.wait(0.02):
            self._emit(Frame(np.zeros((240, 320, 3), np.uint8), i, i / 30, time.monotonic()))
            i += 1


def test_a_fault_on_one_streams_frames_costs_only_those_frames():
    model = FailsOnDark()
    batcher = Batcher([model], Telemetry(), max_batch=4, batch_timeout_s=0.005)
    good = _stream("good", 1, [model], realtime=True)
    bad = Stream("bad", Dark("synthetic://"), [], RollingMonitor(), Telemetry(), hud=False, models=[model])
    batcher.add(good)
    batcher.add(bad)
    _run(batcher, [good, bad], 2.0)
    assert good.telemetry.counters["frames_in"] > 10
    assert good.telemetry.counters["frame_errors"] == 0
    assert bad.telemetry.counters["frame_errors"] > 10
    assert all(r.name == "picky" for r in good.latest_results)


def test_streams_added_and_removed_while_running(dynamic_detector):
    model = open_artifact(dynamic_detector)
    batcher = Batcher([model], Telemetry(), max_batch=4, batch_timeout_s=0.005)
    first = _stream("first", 1, [model], realtime=True)
    batcher.add(first)
    first.start()
    batcher.start()
    try:
        for i in range(5):
            extra = _stream("extra", 10 + i, [model], realtime=True)
            batcher.add(extra)
            extra.start()
            end = time.monotonic() + 10
            while extra.telemetry.counters["frames_in"] == 0 and time.monotonic() < end:
                time.sleep(0.05)
            assert extra.telemetry.counters["frames_in"] > 0
            with pytest.raises(ValueError, match="exists already"):
                batcher.add(_stream("extra", 99, [model]))
            assert batcher.remove("extra") is extra
            extra.stop()
            assert not extra.source.thread_alive() and not extra.threads()["output"][0]
        before = first.telemetry.counters["frames_in"]
        time.sleep(0.5)
        assert first.telemetry.counters["frames_in"] > before
        assert [s.name for s in batcher.streams] == ["first"]
    finally:
        batcher.stop()
        first.stop()
