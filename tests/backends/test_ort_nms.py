"""The NMS kernel ONNX Runtime lends core.nms: its one-node model, and who installs it. (Its answers are
compared with torchvision's in tests/core/test_nms.py, every case through both paths.)"""
import subprocess
import sys
from pathlib import Path

import pytest

from edge_app.backends.ort_nms import nms_model_bytes

ROOT = Path(__file__).resolve().parents[2]


def test_kernel_model_is_valid_onnx():
    # The hand-written protobuf, read back by the onnx package (an independent reader) and checked.
    onnx = pytest.importorskip("onnx", reason="onnx is in the dev extra")
    model = onnx.load_from_string(nms_model_bytes())
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == ["NonMaxSuppression"]
    assert model.opset_import[0].version == 11
    assert [i.name for i in model.graph.input] == ["boxes", "scores", "max_per_class", "iou", "score_min"]


def test_the_onnx_runtime_backend_lends_its_kernel():
    code = ("import edge_app.core.nms as n; from edge_app.backends import create_backend; "
            "assert n.kernel() is None; create_backend('onnxruntime', 'edge_app/demo/detector.onnx'); "
            "print(type(n.kernel()).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.strip() == "OrtNms", out.stderr


def test_a_kernel_that_cannot_start_leaves_numpy_with_a_warning(monkeypatch, caplog):
    import edge_app.backends.ort_nms as ort_nms
    import edge_app.core.nms as core_nms

    def broken():
        raise RuntimeError("NonMaxSuppression(11) is not implemented in this build")

    monkeypatch.setattr(core_nms, "_KERNEL", None)
    monkeypatch.setattr(ort_nms, "_failed", False)
    monkeypatch.setattr(ort_nms, "OrtNms", broken)
    with caplog.at_level("WARNING"):
        ort_nms.install()
        ort_nms.install()  # tried once, warned once
    assert core_nms.kernel() is None
    warnings = [r.getMessage() for r in caplog.records if "NMS stays on numpy" in r.getMessage()]
    assert len(warnings) == 1 and "not implemented in this build" in warnings[0]
