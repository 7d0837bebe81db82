"""The pipeline's drawing order: masks, then the HUD, then boxes and labels on top."""
import numpy as np

from edge_app.core.types import Detections, Frame
from edge_app.inference.models import ModelResult
from edge_app.streams.overlay import palette
from edge_app.streams.pipeline import Pipeline
from edge_app.review.rolling import RollingMonitor
from edge_app.sources.synthetic import SyntheticSource
from edge_app.streams.telemetry import Telemetry


def test_a_box_under_the_hud_stays_visible():
    pipe = Pipeline(SyntheticSource("synthetic://"), [], [], RollingMonitor(), Telemetry())
    image = np.full((240, 320, 3), 90, np.uint8)
    det = Detections(np.array([[10, 12, 120, 60]], np.float32), np.array([0.9], np.float32), np.array([0]))
    out = pipe.annotate(Frame(image, 0, 0.0, 0.0), [ModelResult("det", "detection", ("thing",), detections=det)])
    colour = palette(1, seed=3)[0]
    # the box's left edge lies inside the HUD panel: drawn after it, it keeps its exact colour
    assert not np.array_equal(out[5, 100], image[5, 100])  # the panel is there (one line: rows 0-25)
    np.testing.assert_array_equal(out[20, 10], colour)  # the box edge inside it keeps its exact colour
