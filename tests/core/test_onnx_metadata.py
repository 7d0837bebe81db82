"""An artifact's embedded metadata read from the ONNX protobuf by core (no onnx package, no runtime
session: core is numpy-only), equal to what the onnx package itself reads; a broken file is named."""
from pathlib import Path

import pytest

from edge_app.core.artifact import ArtifactError, onnx_metadata, read_embedded_meta

onnx = pytest.importorskip("onnx", reason="onnx is the reference here (dev extra)")
DEMO = Path(__file__).resolve().parents[2] / "edge_app" / "demo"


@pytest.mark.parametrize("path", sorted(DEMO.glob("*.onnx")), ids=lambda p: p.name)
def test_metadata_equals_the_onnx_packages(path):
    ref = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    assert onnx_metadata(path) == ref and ref


def test_a_truncated_file_is_named(tmp_path):
    broken = tmp_path / "cut.onnx"
    broken.write_bytes((DEMO / "detector.onnx").read_bytes()[:5000])
    with pytest.raises(ArtifactError, match="cut.onnx: not a loadable ONNX model"):
        read_embedded_meta(broken)
