import numpy as np
import pytest

from edge_app.core import boxes as B


def test_conversions_round_trip():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 100, (50, 2))
    wh = rng.uniform(1, 50, (50, 2))
    xyxy = np.concatenate([xy, xy + wh], 1)
    np.testing.assert_allclose(B.xywh_to_xyxy(B.xyxy_to_xywh(xyxy)), xyxy)
    np.testing.assert_allclose(B.cxcywh_to_xyxy(B.xyxy_to_cxcywh(xyxy)), xyxy)
    np.testing.assert_allclose(B.xyxy_to_xywh(xyxy)[:, 2:], wh)
    np.testing.assert_allclose(B.xyxy_to_cxcywh(xyxy)[:, :2], xy + wh / 2)


def test_iou_matrix_matches_direct_loop():
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 50, (20, 2))
    a = np.concatenate([xy, xy + rng.uniform(0.5, 20, (20, 2))], 1)
    b = a[::-1] + rng.uniform(-5, 5, (20, 1))  # shifted copies: partial overlaps
    got = B.iou_matrix(a, b)
    for i in range(len(a)):
        for j in range(len(b)):
            iw = max(0.0, min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0]))
            ih = max(0.0, min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1]))
            inter = iw * ih
            union = ((a[i, 2] - a[i, 0]) * (a[i, 3] - a[i, 1]) + (b[j, 2] - b[j, 0]) * (b[j, 3] - b[j, 1])
                     - inter)
            assert got[i, j] == pytest.approx(inter / union, abs=1e-12)


def test_iou_known_values_and_degenerate():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [3, 3, 3, 3]], float)
    np.testing.assert_allclose(B.iou_matrix(a, b), [[1.0, 50 / 150, 0.0, 0.0]])
    assert B.iou_matrix(np.zeros((0, 4)), b).shape == (0, 4)
    # two empty boxes: union 0 gives 0, not NaN
    assert B.iou_matrix(b[3:], b[3:])[0, 0] == 0.0


def test_coco_iou_crowd_uses_detection_area():
    dt = np.array([[0, 0, 10, 10]], float)          # xywh, inside the crowd region
    gt = np.array([[0, 0, 100, 100], [0, 0, 100, 100]], float)
    iou = B.coco_iou_xywh(dt, gt, np.array([True, False]))
    assert iou[0, 0] == pytest.approx(1.0)
    assert iou[0, 1] == pytest.approx(100 / 10000)


def test_clip_and_area():
    b = np.array([[-5, -5, 20, 30], [2, 2, 1, 1]], np.float32)
    c = B.clip_boxes(b, 10, 25)
    np.testing.assert_array_equal(c[0], [0, 0, 10, 25])
    np.testing.assert_array_equal(B.box_area(c), [250, 0])
    assert c.dtype == np.float32


def test_bad_shape_is_an_error():
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        B.xyxy_to_xywh(np.zeros((3, 3)))
