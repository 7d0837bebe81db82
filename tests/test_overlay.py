"""Overlays: geometry checked directly (labels inside the frame, never over another label where there is
room; boxes where they belong; masks blended as computed here), then golden images against unintended
drawing changes (small pixel tolerance; regenerate with UPDATE_GOLDEN=1 and look at them)."""
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_app.core.types import Detections, SegMask
from edge_app.streams.overlay import draw_detections, draw_hud, draw_mask, label_layout, palette

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


def _intersect(a, b):
    return min(a[0] + a[2], b[0] + b[2]) > max(a[0], b[0]) and min(a[1] + a[3], b[1] + b[3]) > max(a[1], b[1])


@pytest.mark.parametrize("boxes", [
    [[20, 30, 80, 95], [100, 10, 150, 60]],                       # the golden scene: labels met above them
    [[10, 10, 60, 60], [20, 12, 70, 62], [30, 14, 80, 64]],      # three overlapping boxes
    [[0, 0, 40, 30], [5, 2, 45, 32]],                            # in the corner: no room above
    [[100, 90, 159, 119], [110, 95, 159, 119]],                  # bottom-right corner
])
def test_labels_stay_inside_and_do_not_cover_each_other(boxes):
    sizes = [(66, 16)] * len(boxes)
    rects = label_layout(np.array(boxes, np.float32), sizes, 160, 120)
    for r in rects:
        assert 0 <= r[0] and r[0] + r[2] <= 160 and 0 <= r[1] and r[1] + r[3] <= 120, r
    for i, a in enumerate(rects):
        for b in rects[i + 1:]:
            assert not _intersect(a, b), (a, b)


def test_overlapping_labels_both_readable_in_pixels():
    # the square's label used to be drawn over the circle's score: both label fills must stay whole
    det = _det()
    out = draw_detections(_scene(), det, ("circle", "square"))
    colours = palette(2, seed=3)
    for cls in (0, 1):
        fill = np.all(out == colours[cls], axis=2)
        assert fill.sum() > 300, cls  # a label's background of its own colour, not painted over


def test_labels_are_sized_to_the_frame():
    # issue 24: labels were as large on a 480x360 frame as on 1080p, hiding their neighbours
    from edge_app.streams.overlay import text_scale

    small, hd = np.zeros((360, 480, 3), np.uint8), np.zeros((1080, 1920, 3), np.uint8)
    assert text_scale(small)[0] == 0.35 and text_scale(hd)[0] == 0.75
    heights = []
    for image in (small, hd):
        det = Detections(np.array([[100, 100, 200, 200]], np.float32), np.array([0.9], np.float32), np.array([0]))
        draw_detections(image, det, ["person"])
        rows = np.flatnonzero((image[:100, 100:200] != 0).any(axis=(1, 2)))  # the label sits above the box
        heights.append(len(rows))
    assert heights[1] > 1.8 * heights[0], heights
