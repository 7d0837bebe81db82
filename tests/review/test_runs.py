"""/review shows one run's frames of one camera (issue 24: it mixed samples from unrelated runs): every
sample records its run and stream; the store filters by them and lists what is there."""
import numpy as np

from edge_app.core.types import Detections, Frame
from edge_app.inference.models import ModelResult
from edge_app.review.labels import Sampler
from edge_app.review.samples import SampleStore
from edge_app.review.rolling import RollingMonitor


def _save(sampler: Sampler, n: int) -> None:
    for i in range(n):
        image = np.full((48, 64, 3), 30 * i, np.uint8)
        r = ModelResult("det", "detection", ("person",))
        r.detections = Detections(np.array([[5, 5, 20, 30]], np.float32), np.array([0.8], np.float32), np.array([0]))
        sampler.save(Frame(image, i, 0.0, 0.0), [r])


def test_samples_carry_their_run_and_stream_and_the_store_filters_by_them(tmp_path):
    samples, inbox = tmp_path / "samples", tmp_path / "inbox"
    _save(Sampler(samples, inbox, 1, 50, RollingMonitor(), run="run-a", stream="door"), 3)
    _save(Sampler(samples, inbox, 1, 50, RollingMonitor(), run="run-b", stream="door"), 2)
    _save(Sampler(samples, inbox, 1, 50, RollingMonitor(), run="run-b", stream="yard"), 4)
    store = SampleStore(samples, inbox)
    assert len(store.summary()) == 9
    only = store.summary(run="run-b", stream="yard")
    assert len(only) == 4 and {(s["run"], s["stream"]) for s in only} == {("run-b", "yard")}
    assert len(store.summary(run="run-a")) == 3 and store.record(only[0]["id"])["stream"] == "yard"
    facets = {(f["run"], f["stream"]): f["samples"] for f in store.facets()}
    assert facets == {("run-a", "door"): 3, ("run-b", "door"): 2, ("run-b", "yard"): 4}
