"""NMS against torchvision.ops.batched_nms (the dev extra installs it), plus the post-processor."""
import numpy as np
import pytest

from edge_app.core.nms import batched_nms, nms, postprocess_detections

import edge_app.core.nms as core_nms
from edge_app.backends.ort_nms import OrtNms

torch = pytest.importorskip("torch", reason="torch is in the dev extra: pip install -e '.[dev]'")
torchvision = pytest.importorskip("torchvision", reason="torchvision is in the dev extra")


@pytest.fixture(autouse=True, params=["numpy", "onnxruntime"])
def kernel(request, monkeypatch):
    """Every test twice: the numpy paths alone, and with ONNX Runtime's kernel lent for every size it
    takes (down to one box, so the small cases go through it too)."""
    monkeypatch.setattr(core_nms, "_KERNEL", OrtNms() if request.param == "onnxruntime" else None)
    monkeypatch.setattr(core_nms, "_KERNEL_MIN", 0)
    return request.param


def _random_case(rng, n, num_classes, grid=16.0):
    # Coordinates on a 1/16 grid are exact in float32, also after torchvision's per-class offsets,
    # so both implementations see the same numbers; scores rounded to 2 decimals make many ties.
    xy = np.round(rng.uniform(0, 300, (n, 2)) * grid) / grid
    wh = np.round(rng.uniform(1, 80, (n, 2)) * grid) / grid
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    if n > 4:  # exact duplicates: IoU exactly 1, and shared edges
        src = rng.integers(0, n, n // 4)
        boxes[rng.integers(0, n, n // 4)] = boxes[src]
    scores = np.round(rng.uniform(0, 1, n), 2).astype(np.float32)
    classes = rng.integers(0, num_classes, n)
    return boxes, scores, classes


def _torchvision(boxes, scores, classes, thr):
    return torchvision.ops.batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores),
                                       torch.from_numpy(classes), thr).numpy()


@pytest.mark.parametrize("seed", range(40))
def test_same_indices_as_torchvision_small(seed):
    # Up to 1000 boxes torchvision uses its coordinate-offset path with a stable sort:
    # the kept list must be identical, order and ties included.
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 1000))
    boxes, scores, classes = _random_case(rng, n, int(rng.integers(1, 8)))
    thr = float(rng.choice([0.0, 0.3, 0.45, 0.5, 0.7, 1.0]))
    np.testing.assert_array_equal(batched_nms(boxes, scores, classes, thr),
                                  _torchvision(boxes, scores, classes, thr))


@pytest.mark.parametrize("seed", range(10))
def test_same_kept_set_as_torchvision_large(seed):
    # Above 1000 boxes torchvision runs NMS per class and merges with an unstable sort, so equal
    # scores may come in any order there: the kept set and the score sequence must be identical.
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(1001, 6000))
    boxes, scores, classes = _random_case(rng, n, int(rng.integers(1, 20)))
    thr = float(rng.choice([0.3, 0.5, 0.7]))
    ours = batched_nms(boxes, scores, classes, thr)
    theirs = _torchvision(boxes, scores, classes, thr)
    assert sorted(ours.tolist()) == sorted(theirs.tolist())
    np.testing.assert_array_equal(scores[ours], scores[theirs])
    # ours is deterministic: ties by index
    for a, b in zip(ours[:-1], ours[1:]):
        assert scores[a] > scores[b] or (scores[a] == scores[b] and a < b)


@pytest.mark.parametrize("thr", [0.5, 0.6])
@pytest.mark.parametrize("n", [60, 300, 400])  # the dense path, one block, blocks of ranks
def test_long_suppression_chain(thr, n):
    # Each box overlaps only its neighbours, scores falling along the chain: kept/suppressed
    # alternate, which takes one "wave" per kept box, more than the vectorised rounds allow,
    # so the sequential finish is exercised too.
    x = np.arange(n, dtype=np.float32) * 2.0  # neighbour IoU 0.67, next-but-one 0.43
    boxes = np.stack([x, np.zeros(n), x + 10, np.full(n, 10.0)], 1).astype(np.float32)
    scores = np.linspace(1, 0.1, n).astype(np.float32)
    classes = np.zeros(n, np.int64)
    ours = batched_nms(boxes, scores, classes, thr)
    np.testing.assert_array_equal(ours, _torchvision(boxes, scores, classes, thr))
    assert n // 8 < len(ours) < n


@pytest.mark.parametrize("seed", range(6))
def test_detector_like_clusters(seed):
    # Dense clusters (a detector's raw output): most boxes are dropped by the first block's winners.
    rng = np.random.default_rng(500 + seed)
    n = int(rng.integers(200, 1000))
    centres = rng.uniform(0, 600, (n // 40 + 1, 2))
    which = rng.integers(0, len(centres), n)
    wh = rng.uniform(20, 200, (len(centres), 2))[which] * rng.uniform(0.8, 1.2, (n, 2))
    c = centres[which] + rng.normal(0, 0.1, (n, 2)) * wh
    boxes = np.round(np.concatenate([c - wh / 2, c + wh / 2], 1) * 16).astype(np.float32) / 16
    scores = np.round(rng.uniform(0, 1, n), 3).astype(np.float32)
    classes = rng.integers(0, 3, n)
    np.testing.assert_array_equal(batched_nms(boxes, scores, classes, 0.5),
                                  _torchvision(boxes, scores, classes, 0.5))


def test_ties_lower_index_wins():
    boxes = np.array([[0, 0, 10, 10]] * 3, np.float32)
    assert nms(boxes, np.array([0.5, 0.5, 0.5], np.float32), 0.5).tolist() == [0]
    assert nms(boxes, np.array([0.4, 0.5, 0.5], np.float32), 0.5).tolist() == [1]


def test_classes_do_not_suppress_each_other():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert batched_nms(boxes, scores, np.array([0, 1, 0]), 0.5).tolist() == [0, 1]
    assert batched_nms(boxes, scores, np.array([0, 0, 0]), 0.5).tolist() == [0]


def test_threshold_is_strict():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], np.float32)  # IoU exactly 0.5
    scores = np.array([0.9, 0.8], np.float32)
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, 0.49).tolist() == [0]
    # float32 IoU against a double threshold, as torchvision: 1/3 in float32 is above 1/3
    thirds = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], np.float32)
    assert nms(thirds, scores, 1 / 3).tolist() == _torchvision(thirds, scores, np.zeros(2, np.int64),
                                                                1 / 3).tolist() == [0]


def test_postprocess_per_class_threshold_topk_maxdet():
    rng = np.random.default_rng(7)
    n, c = 300, 4
    xy = rng.uniform(0, 500, (n, 2))
    boxes = np.concatenate([xy, xy + 20], 1).astype(np.float32)  # far apart: NMS removes little
    scores = rng.uniform(0, 1, (n, c)).astype(np.float32)
    thr = np.array([0.0, 0.5, 0.9, 0.99], np.float32)
    det = postprocess_detections(boxes, scores, iou_threshold=0.5, score_threshold=thr, top_k=10_000,
                                 max_detections=10_000, background_class=0)
    assert set(det.classes.tolist()) <= {1, 2, 3}
    assert np.all(det.scores > thr[det.classes])
    expected = sum(int(np.count_nonzero(scores[:, k] > thr[k])) for k in (1, 2, 3))
    # each class's surviving boxes: NMS can only remove, never add
    assert 0 < len(det) <= expected
    assert np.all(np.diff(det.scores) <= 0)

    limited = postprocess_detections(boxes, scores, score_threshold=0.0, top_k=50, max_detections=7)
    assert len(limited) == 7
    best = np.sort(scores.reshape(-1))[::-1][:7]
    np.testing.assert_allclose(limited.scores, best)  # the best 7 survive (boxes of one anchor per class)


def test_postprocess_per_box_per_class_boxes_and_mapping():
    boxes = np.zeros((2, 3, 4), np.float32)
    boxes[:, :, 2:] = 10
    boxes[1, :, :2] = 100
    boxes[1, :, 2:] = 110
    scores = np.array([[0.1, 0.8, 0.6], [0.2, 0.1, 0.95]], np.float32)
    det = postprocess_detections(boxes, scores, score_threshold={2: 0.5})
    assert det.classes.tolist() == [2, 2]
    assert det.scores.tolist() == pytest.approx([0.95, 0.6])


@pytest.mark.parametrize("kwargs, message", [
    ({"scores": np.zeros(5)}, "expected \\(N, C\\)"),
    ({"boxes": np.zeros((5, 3))}, "boxes: expected"),
    ({"score_threshold": np.zeros(2)}, "expected one value or 3 values"),
    ({"score_threshold": {7: 0.5}}, "class 7 out of range"),
])
def test_postprocess_bad_input(kwargs, message):
    args = {"boxes": np.zeros((5, 4), np.float32), "scores": np.zeros((5, 3), np.float32)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        postprocess_detections(args.pop("boxes"), args.pop("scores"), **args)


def test_batched_nms_bad_input():
    with pytest.raises(ValueError, match="lengths differ"):
        batched_nms(np.zeros((3, 4)), np.zeros(2), np.zeros(3), 0.5)
    with pytest.raises(ValueError, match="iou_threshold"):
        batched_nms(np.zeros((3, 4)), np.zeros(3), np.zeros(3), -0.1)


def test_flipped_boxes_stay_on_the_numpy_path(kernel):
    # ONNX Runtime orders a box's corners itself, torchvision does not: a flipped box (x2 < x1) overlaps
    # nothing for torchvision; the kernel is not asked about a set holding one.
    boxes = np.array([[0, 0, 10, 10], [10, 0, 0, 10], [1, 1, 11, 11]] * 20, np.float32)
    scores = np.linspace(1, 0.1, len(boxes)).astype(np.float32)
    classes = np.zeros(len(boxes), np.int64)
    calls = []
    if kernel == "onnxruntime":
        real = core_nms._KERNEL
        core_nms._KERNEL = lambda *a: calls.append(1) or real(*a)
    np.testing.assert_array_equal(batched_nms(boxes, scores, classes, 0.5), _torchvision(boxes, scores, classes, 0.5))
    assert calls == []

