"""Shared fixtures: the real labelled data beside the project (skipped cleanly when absent)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EDGE_VISION_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set EDGE_VISION_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


DEMO = ROOT / "edge_app" / "demo"


def _demo(name: str) -> Path:
    path = DEMO / f"{name}.onnx"
    if not path.is_file():
        pytest.skip(f"demo {name} {path} not built (make demo-models)")
    return path


@pytest.fixture(scope="session")
def demo_detector() -> Path:
    return _demo("detector")


@pytest.fixture(scope="session")
def demo_segmenter() -> Path:
    return _demo("segmenter")
