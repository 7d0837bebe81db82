"""Overlays against golden images (small pixel tolerance); regenerate with UPDATE_GOLDEN=1."""
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_app.core.types import Detections, SegMask
from edge_app.overlay import draw_detections, draw_hud, draw_mask, palette

GOLDEN = Path(__file__).with_name("golden")


def _scene():
    img = np.zeros((120, 160, 3), np.uint8)
    img[:] = (40, 60, 80)
    cv2.circle(img, (50, 60), 25, (200, 200, 200), -1)
    return img


def _check(name, image):
    path = GOLDEN / f"{name}.png"
    if os.environ.get("UPDATE_GOLDEN") or not path.exists():
        if not os.environ.get("UPDATE_GOLDEN"):
            pytest.fail(f"golden image {path} missing: run with UPDATE_GOLDEN=1 and review it")
        cv2.imwrite(str(path), image)
    golden = cv2.imread(str(path))
    assert golden.shape == image.shape
    diff = np.abs(golden.astype(int) - image.astype(int))
    # tolerate antialiasing differences between OpenCV builds, not a different drawing
    assert (diff > 40).mean() < 0.002 and diff.mean() < 1.0, f"{name}: mean diff {diff.mean():.2f}"


def _det():
    return Detections(np.array([[20, 30, 80, 95], [100, 10, 150, 60]], np.float32), [0.91, 0.5], [0, 1])


def test_boxes_golden():
    _check("boxes", draw_detections(_scene(), _det(), ("circle", "square")))


def test_mask_golden():
    labels = np.zeros((120, 160), np.uint8)
    labels[35:85, 25:75] = 1
    labels[10:60, 100:150] = 2
    _check("mask", draw_mask(_scene(), SegMask(labels), ("bg", "a", "b"), alpha=0.5))


def test_hud_golden():
    _check("hud", draw_hud(_scene(), ["14.9 fps", "detector 12.3 ms"]))


def test_mask_leaves_background_untouched_and_colours_classes():
    labels = np.zeros((120, 160), np.uint8)
    labels[:, 80:] = 1
    img = _scene()
    out = draw_mask(img.copy(), SegMask(labels), ("bg", "fg"), alpha=0.5)
    assert np.array_equal(out[:, :80], img[:, :80])
    expected = (img[:, 80:].astype(int) + palette(2)[1].astype(int)) / 2
    assert np.abs(out[:, 80:].astype(int) - expected).max() <= 1


def test_box_drawn_where_it_belongs():
    out = draw_detections(np.zeros((100, 100, 3), np.uint8),
                          Detections(np.array([[10, 40, 60, 90]], np.float32), [0.9], [0]), ("x",))
    assert out[40:91, 10].any() and out[90, 10:61].any()  # left and bottom edges
    assert not out[60:85, 20:50].any()                    # inside stays empty
    with pytest.raises(ValueError, match="does not match"):
        draw_mask(out, SegMask(np.zeros((5, 5), np.uint8)), ("a",))
