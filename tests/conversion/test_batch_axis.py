"""edge-app build --dynamic-batch: a fixed-batch family rewritten with a dynamic batch axis, checked against
the original files on real frames, derived files carried over; a graph that cannot take a batch refused
with nothing written."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edge_app.core.artifact import read_meta, sha256_file
from edge_app.frames.preprocess import Preprocessor
from edge_app.inference.models import ModelSpec, open_model

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "edge_app" / "demo"


def clip_frames(n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(DEMO / "people.mp4"))
    out = []
    while len(out) < n:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(frame)
        for _ in range(7):
            cap.read()
    cap.release()
    assert len(out) == n
    return out


def test_person_family_gets_a_dynamic_batch_and_keeps_its_calibration(tmp_path):
    for f in DEMO.glob("person.*"):
        shutil.copy(f, tmp_path / f.name)
    before = {p.name: sha256_file(p) for p in tmp_path.glob("person*.onnx")}
    old_precision = json.loads((tmp_path / "person.precision.json").read_text())["precision"]
    r = subprocess.run([sys.executable, "-m", "edge_app", "build", "--dynamic-batch", str(tmp_path / "person.onnx")],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert set(report["files"]) == set(before)
    assert set(report["carried"]) == {"person.thresholds.json", "person.precision.json"}
    for name, old in before.items():
        new = tmp_path / name
        meta = read_meta(new)  # the digest in the sidecar is the new file's
        assert sha256_file(new) != old and meta.extra["batch_axis"]["from_sha256"] == old
        assert onnx.load(str(new)).graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    # the original file (the reference) on real frames one by one vs the new one with all of them at once
    meta = read_meta(DEMO / "person.onnx")
    pre = Preprocessor.from_meta(meta)
    x = [pre(f)[0] for f in clip_frames(4)]
    ref = ort.InferenceSession(str(DEMO / "person.onnx"), providers=["CPUExecutionProvider"])
    new = ort.InferenceSession(str(tmp_path / "person.onnx"), providers=["CPUExecutionProvider"])
    together = new.run(None, {meta.input_name: np.concatenate(x)})
    for i, xi in enumerate(x):
        for a, b in zip(ref.run(None, {meta.input_name: xi}), together):
            np.testing.assert_allclose(b[i:i + 1], a, rtol=1e-5, atol=1e-5)
    # the runtime takes the family as calibrated: same precision, thresholds not stale, batch dynamic
    model = open_model(ModelSpec("person", "detector", tmp_path / "person.onnx",
                                 thresholds_file=tmp_path / "person.thresholds.json"))
    assert model.precision == old_precision and model.max_batch is None
    assert model.thresholds_source == str(tmp_path / "person.thresholds.json")


def _flatten_model(path: Path) -> None:
    """images (1, 3, 8, 8) -> Reshape to a flat (192,) vector: no batch axis survives it."""
    from onnx import TensorProto, helper, numpy_helper

    shape = numpy_helper.from_array(np.array([192], np.int64), "flat")
    node = helper.make_node("Reshape", ["images", "flat"], ["scores"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [192])], [shape])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_a_graph_without_a_batch_axis_is_refused_and_nothing_is_written(tmp_path):
    from conversion.batch_axis import BatchAxisError, check, make_dynamic

    src = tmp_path / "flat.onnx"
    _flatten_model(src)
    model, changed = make_dynamic(onnx.load(str(src)))
    assert changed == 0
    cand = tmp_path / "cand.onnx"
    onnx.save(model, str(cand))
    x = [np.random.default_rng(i).random((1, 3, 8, 8), np.float32) for i in range(3)]
    with pytest.raises(BatchAxisError, match="a batch of 3 fails|an output has batch"):
        check(src, cand, x)


def test_cli_refuses_a_family_it_cannot_rewrite(tmp_path):
    """An artifact whose graph flattens the batch: exit 1, the error names the file, the file unchanged."""
    shutil.copy(DEMO / "segmenter.onnx", tmp_path / "segmenter.onnx")
    shutil.copy(DEMO / "segmenter.json", tmp_path / "segmenter.json")
    model = onnx.load(str(tmp_path / "segmenter.onnx"))
    from onnx import helper, numpy_helper
    out = model.graph.output[0]
    flat = numpy_helper.from_array(np.array([-1], np.int64), "flat_all")
    model.graph.initializer.append(flat)
    model.graph.node.append(helper.make_node("Reshape", [out.name, "flat_all"], ["flat_logits"]))
    model.graph.output[0].name = "flat_logits"
    del model.graph.output[0].type.tensor_type.shape.dim[:]
    model.graph.output[0].type.tensor_type.shape.dim.add().dim_value = int(np.prod([4, 192, 256]))
    from conversion.seal import seal
    meta = read_meta(tmp_path / "segmenter.onnx", verify_checksum=False)
    from dataclasses import replace
    tmp = tmp_path / ".seg.tmp"
    onnx.save(model, str(tmp))
    seal(tmp, tmp_path / "segmenter.onnx", replace(meta, outputs={"logits": "flat_logits"}))
    digest = sha256_file(tmp_path / "segmenter.onnx")
    r = subprocess.run([sys.executable, "-m", "edge_app", "build", "--dynamic-batch", str(tmp_path / "segmenter.onnx")],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 1
    assert "segmenter.onnx" in r.stderr and "batch" in r.stderr
    assert sha256_file(tmp_path / "segmenter.onnx") == digest
    assert not list(tmp_path.glob(".*.tmp"))
