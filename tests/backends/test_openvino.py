"""The OpenVINO backend on the shipped artifacts, against ONNX Runtime on the same real frame; its bad
inputs (no package, no BF16 on the CPU, a graph its ONNX frontend refuses) as errors naming the key,
the CPU feature or the node. OpenVINO is in the dev extra; without it these tests skip with the reason."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_app.backends import BackendError, create_backend
from edge_app.backends.cpu import read_cpuinfo
from edge_app.core.artifact import read_meta
from edge_app.frames.preprocess import Preprocessor
from edge_app.inference.models import ModelError, ModelSpec, open_model

ov = pytest.importorskip("openvino", reason="OpenVINO is in the dev extra ([openvino]): pip install -e '.[openvino]'")
onnx = pytest.importorskip("onnx", reason="onnx is in the dev extra")

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "edge_app" / "demo"
SHIPPED = sorted(DEMO.glob("*.onnx"))
# A CPU of the AVX2-only kind (no AVX-512, no BF16): the flags line of such a /proc/cpuinfo
AVX2_ONLY = read_cpuinfo("model name\t: AMD EPYC 7B12\nflags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2\n", 2)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    cap = cv2.VideoCapture(str(DEMO / "people.mp4"))
    for _ in range(30):  # a frame with the person in it, not the first black one
        ok, image = cap.read()
    cap.release()
    assert ok
    return image


def test_every_shipped_artifact_converts():
    # OpenVINO's ONNX frontend stands in for TensorRT's parser, which cannot run here: each shipped file
    # is read and compiled for the CPU as it is.
    assert SHIPPED, "no shipped artifacts"
    core = ov.Core()
    for path in SHIPPED:
        model = core.read_model(str(path))
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        assert len(compiled.outputs) == len(read_meta(path).outputs) or read_meta(path).task == "segmentation"


@pytest.mark.parametrize("path", [p for p in SHIPPED if ".int8" not in p.name], ids=lambda p: p.stem)
def test_fp32_equals_onnx_runtime_on_a_real_frame(path, frame):
    meta = read_meta(path)
    x, _ = Preprocessor.from_meta(meta)(frame)
    ours = create_backend("openvino", path, precision="fp32").infer({meta.input_name: x})
    ref = create_backend("onnxruntime", path).infer({meta.input_name: x})
    assert set(ours) == set(ref)
    for name in ref:
        scale = max(1.0, float(np.abs(ref[name]).max()))
        # float32 both: only the order of summation differs (1e-3 relative to the largest output)
        assert np.abs(ours[name] - ref[name]).max() <= 1e-3 * scale, name


def test_bf16_is_computed_in_bfloat16_and_int8_runs_the_qdq_file(frame):
    path = DEMO / "segmenter.onnx"
    meta = read_meta(path)
    x, _ = Preprocessor.from_meta(meta)(frame)
    ref = create_backend("onnxruntime", path).infer({meta.input_name: x})["logits"]
    from edge_app.backends.cpu import cpu_info
    if cpu_info().has("BF16"):
        bf16 = create_backend("openvino", path, precision="bf16").infer({meta.input_name: x})["logits"]
        diff = np.abs(bf16 - ref).max()
        # bfloat16 keeps 8 bits of mantissa: different from float32, yet the same segmentation
        assert 0 < diff < 0.25 * np.abs(ref).max()
        assert (bf16.argmax(1) == ref.argmax(1)).mean() > 0.98
    q = create_backend("openvino", DEMO / "segmenter.int8.onnx", precision="int8").infer({meta.input_name: x})
    assert (q["logits"].argmax(1) == ref.argmax(1)).mean() > 0.95


def test_requests_in_flight_equal_one_call(frame):
    # coco has a dynamic batch axis: 4 images as one call, one by one and 2 requests in flight agree
    path = DEMO / "coco.onnx"
    meta = read_meta(path)
    pre = Preprocessor.from_meta(meta)
    h, w = frame.shape[:2]
    x = np.concatenate([pre(frame[: h // 2 + 40 * i, : w // 2 + 60 * i])[0] for i in range(4)])
    for name in ("openvino", "onnxruntime"):
        b = create_backend(name, path, threads=2, requests=2)
        one = b.infer({meta.input_name: x})
        many = b.infer_requests([{meta.input_name: x[i:i + 1]} for i in range(4)])
        for k in one:
            np.testing.assert_allclose(np.concatenate([m[k] for m in many]), one[k], atol=1e-4, rtol=1e-4)
        b.close()


def _spec(**kw) -> ModelSpec:
    return ModelSpec("people", "detector", DEMO / "person.onnx", **kw)


def test_openvino_without_the_extra_names_the_key_and_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # what an absent package looks like to import
    with pytest.raises(ModelError) as err:
        open_model(_spec(backend="openvino", precision="fp32"))
    assert 'models.people.backend = "openvino"' in str(err.value) and "[openvino]" in str(err.value)
    with pytest.raises(BackendError, match=r"\[openvino\]"):
        create_backend("openvino", DEMO / "person.onnx")


def test_bf16_on_a_cpu_without_bf16_names_the_feature(monkeypatch):
    import edge_app.backends.openvino as ovb
    import edge_app.inference.models as models

    monkeypatch.setattr(models, "cpu_info", lambda: AVX2_ONLY)
    monkeypatch.setattr(ovb, "cpu_info", lambda: AVX2_ONLY)
    with pytest.raises(ModelError) as err:
        open_model(_spec(backend="openvino", precision="bf16"))
    assert 'models.people.precision = "bf16"' in str(err.value) and "avx512_bf16" in str(err.value)
    assert "AMD EPYC 7B12" in str(err.value)
    with pytest.raises(BackendError, match="avx512_bf16"):
        create_backend("openvino", DEMO / "person.onnx", precision="bf16")
    with pytest.raises(ModelError, match='runs on backend "openvino" only'):
        open_model(_spec(backend="onnxruntime", precision="bf16"))


def _unconvertible(tmp_path: Path, kind: str) -> Path:
    """A graph OpenVINO's ONNX frontend refuses: a node of an unknown domain, or a ScatterND on scalar
    indices (tf2onnx's shape sub-graphs had one) — ONNX Runtime refuses the second too, at run time."""
    h, T = onnx.helper, onnx.TensorProto
    x = h.make_tensor_value_info("images", T.FLOAT, [1, 3, 8, 8])
    y = h.make_tensor_value_info("out", T.FLOAT, None)
    if kind == "custom-op":
        nodes = [h.make_node("Relu", ["images"], ["r"], name="relu0"),
                 h.make_node("FancyResize", ["r"], ["out"], name="fancy_resize_7", domain="com.example")]
        inits, opsets = [], [h.make_opsetid("", 17), h.make_opsetid("com.example", 1)]
    else:
        nodes = [h.make_node("Shape", ["images"], ["shp"], name="shape0"),
                 h.make_node("ScatterND", ["shp", "idx", "upd"], ["shp2"], name="scatter_shape"),
                 h.make_node("Reshape", ["images", "shp2"], ["out"], name="reshape0")]
        inits = [onnx.numpy_helper.from_array(np.array(1, np.int64), "idx"),
                 onnx.numpy_helper.from_array(np.array(3, np.int64), "upd")]
        opsets = [h.make_opsetid("", 13)]
    path = tmp_path / f"{kind}.onnx"
    onnx.save(h.make_model(h.make_graph(nodes, "g", [x], [y], initializer=inits), opset_imports=opsets), str(path))
    return path


@pytest.mark.parametrize("kind,node", [("custom-op", "com.example.FancyResize"), ("scatter", "'scatter_shape' (ScatterND)")])
def test_an_artifact_openvino_cannot_convert_names_the_failing_node(tmp_path, kind, node):
    path = _unconvertible(tmp_path, kind)
    with pytest.raises(BackendError) as err:
        create_backend("openvino", path)
    msg = str(err.value)
    assert str(path) in msg and node in msg and "OpenVINO cannot convert" in msg
    assert "src/" not in msg  # OpenVINO's C++ source locations are left out


def test_openvino_runs_in_a_process_that_started_gstreamer(tmp_path):
    """The live app initialises GStreamer (its sources) and runs OpenVINO in one process. GStreamer links
    libunwind, whose C++ unwinder aborted OpenVINO at its first internal exception (SIGABRT at the first
    infer after Gst.init) until gst/__init__.py loads libgcc_s's unwinder first. In a subprocess: the
    failure is the process dying."""
    from tests.gst_helpers import require_gst

    require_gst()
    script = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from edge_app.gst import gst\n"
        "gst()\n"
        "from edge_app.backends.openvino import OpenVinoBackend\n"
        f"b = OpenVinoBackend(Path({str(DEMO / 'detector.onnx')!r}), threads=2)\n"
        "out = b.infer({b.input_names[0]: np.zeros((1, 3, 320, 320), np.float32)})\n"
        "print(sorted(out))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert "boxes" in done.stdout
