"""Augmentations keep boxes and masks consistent (the mask is the referee: its object's bounds = the box)."""
import numpy as np
import pytest

from conversion import augment
from edge_app.datasets.synthetic import make_sample


def _item(seed):
    s = make_sample(np.random.default_rng(seed), 160, 120, max_objects=3)
    return augment.Item(s.image, s.truth.boxes.copy(), s.truth.classes.copy(), s.mask.copy())


def _check(item, tol=2.0):
    """Each box equals the bounds of its object in the mask (within ``tol`` px: nearest-neighbour resizing
    moves an edge by a pixel), and its class is the object's class."""
    import cv2
    h, w = item.image.shape[:2]
    assert item.mask.shape == (h, w)
    assert set(np.unique(item.mask).tolist()) <= {0, 1, 2, 3}  # nearest neighbour: no new values
    for box, cls in zip(item.boxes, item.classes):
        assert 0 <= box[0] < box[2] <= w + tol and 0 <= box[1] < box[3] <= h + tol
        n, comp, stats, _ = cv2.connectedComponentsWithStats((item.mask == cls + 1).astype(np.uint8))
        x0, y0, x1, y1 = np.clip(np.round(box).astype(int), 0, [w, h, w, h])
        inside = comp[y0:y1, x0:x1]
        counts = np.bincount(inside[inside > 0].ravel(), minlength=n)
        assert counts.any(), f"no pixel of class {cls} inside box {box}"
        x, y, bw, bh, _ = stats[int(np.argmax(counts))]  # the object this box labels
        np.testing.assert_allclose([x, y, x + bw, y + bh], box, atol=tol, err_msg=f"class {cls}")


@pytest.mark.parametrize("seed", range(8))
def test_geometric_augmentations_keep_labels_consistent(seed):
    rng = np.random.default_rng(seed)
    item = _item(seed)
    for step in (augment.photometric, augment.zoom_out, augment.iou_crop, augment.hflip):
        item = step(item, rng)
        _check(item)


def test_flip_moves_box_with_pixels():
    item = _item(1)
    flipped = augment.hflip(item, np.random.default_rng(0), p=1.0)
    w = item.image.shape[1]
    np.testing.assert_allclose(flipped.boxes[:, 0], w - item.boxes[:, 2])
    assert np.array_equal(flipped.mask, item.mask[:, ::-1])


def test_scale_crop_output_size():
    item = _item(2)
    out = augment.scale_crop(item, np.random.default_rng(0), (64, 96))
    assert out.image.shape[0] <= 64 and out.image.shape[1] <= 96 and out.mask.shape == out.image.shape[:2]
