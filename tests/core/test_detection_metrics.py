"""Detection metrics: the lecture's worked example, COCO rules, and equality with pycocotools."""
import contextlib
import io

import numpy as np
import pytest

from edge_app.core.detection_metrics import COCO_STAT_NAMES, DetectionMetrics, lecture_ap
from edge_app.core.types import Detections, GroundTruth


def _det(boxes, scores, classes=None):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return Detections(boxes, scores, np.zeros(len(boxes), np.int64) if classes is None else classes)


def _gt(boxes, classes=None, **kw):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    return GroundTruth(boxes, np.zeros(len(boxes), np.int64) if classes is None else classes, **kw)


def test_lecture_worked_example_six_boxes_three_truths():
    # Boxes A..F ranked by score against three ground truths: A, B, D hit; C, E, F miss.
    # P = 1, 1, 2/3, 3/4, 3/5, 1/2 ; R = 1/3, 2/3, 2/3, 1, 1, 1
    # AP = 1/3*1 + 1/3*1 + 0 + 1/3*3/4 = 0.9167 -> 0.92
    gts = [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]]
    dets = {  # name: (box, score)
        "A": ([0, 0, 10, 10], 0.95), "B": ([20, 0, 30, 11], 0.9), "C": ([100, 100, 110, 110], 0.8),
        "D": ([41, 0, 50, 10], 0.7), "E": ([0, 5, 10, 25], 0.6), "F": ([60, 60, 70, 70], 0.5),
    }
    m = DetectionMetrics(1, iou_thresholds=(0.5,))
    m.update(_det([b for b, _ in dets.values()], [s for _, s in dets.values()]), _gt(gts))
    r = m.compute()
    assert round(float(r.ap_lecture[0]), 2) == 0.92
    assert r.ap_lecture[0] == pytest.approx(11 / 12)
    assert lecture_ap(np.array([1, 1, 0, 1, 0, 0], bool), 3) == pytest.approx(11 / 12)
    assert r.tp[0] == 3 and r.fp[0] == 3 and r.num_gt[0] == 3
    assert r.precision[0] == pytest.approx(0.5) and r.recall[0] == pytest.approx(1.0)
    assert r.f1[0] == pytest.approx(2 / 3)
    curve = r.curves[0]
    np.testing.assert_allclose(curve.precision, [1, 1, 2 / 3, 3 / 4, 3 / 5, 1 / 2])
    np.testing.assert_allclose(curve.recall, [1 / 3, 2 / 3, 2 / 3, 1, 1, 1])
    # COCO's 101-point interpolation of the same list: precision 1 up to R=2/3, then 3/4
    expected = (np.sum(np.linspace(0, 1, 101) <= 2 / 3) * 1.0 + np.sum(np.linspace(0, 1, 101) > 2 / 3) * 0.75) / 101
    assert r.ap50[0] == pytest.approx(expected)


def test_one_detection_per_truth_duplicates_are_false_positives():
    m = DetectionMetrics(1, iou_thresholds=(0.5,))
    m.update(_det([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8]), _gt([[0, 0, 10, 10]]))
    r = m.compute()
    assert (r.tp[0], r.fp[0]) == (1, 1)


def test_crowd_absorbs_detections_and_ignore_counts_neither_way():
    m = DetectionMetrics(1, iou_thresholds=(0.5,))
    gt = _gt([[0, 0, 100, 100], [200, 200, 210, 210], [300, 300, 310, 310]],
             crowd=[True, False, False], ignore=[False, False, True])
    det = _det([[10, 10, 20, 20], [30, 30, 40, 40], [200, 200, 210, 210], [300, 300, 310, 310]],
               [0.9, 0.8, 0.7, 0.6])
    m.update(det, gt)
    r = m.compute()
    # both boxes inside the crowd region and the one on the ignored truth are neither TP nor FP
    assert (r.tp[0], r.fp[0], r.num_gt[0]) == (1, 0, 1)
    assert r.precision[0] == 1.0 and r.recall[0] == 1.0


def test_best_iou_wins_and_classes_are_separate():
    m = DetectionMetrics(2, iou_thresholds=(0.5,))
    gt = _gt([[0, 0, 10, 10], [2, 0, 12, 10]], classes=np.array([0, 1]))
    det = _det([[2, 0, 12, 10]], [0.9], classes=np.array([0]))  # overlaps class-1 truth exactly
    m.update(det, gt)
    r = m.compute()
    assert r.tp.tolist() == [1, 0] and r.num_gt.tolist() == [1, 1]  # IoU 8/12 with the class-0 truth


def test_rolling_window_by_frames_and_time():
    m = DetectionMetrics(1, iou_thresholds=(0.5,), window=3)
    hit = (_det([[0, 0, 10, 10]], [0.9]), _gt([[0, 0, 10, 10]]))
    miss = (_det([[50, 50, 60, 60]], [0.9]), _gt([[0, 0, 10, 10]]))
    for t, (d, g) in enumerate([miss, miss, hit, hit, hit]):
        m.update(d, g, timestamp=float(t))
    assert len(m) == 3 and m.compute().precision[0] == 1.0
    m.update(*miss, timestamp=5.0)
    assert m.compute().precision[0] == pytest.approx(2 / 3)
    m.prune(before=4.5)
    assert len(m) == 1 and m.compute().precision[0] == 0.0
    m.reset()
    assert len(m) == 0 and np.isnan(m.compute().precision[0])


# ---- equality with pycocotools on randomised datasets --------------------------------------------
pycocotools = pytest.importorskip("pycocotools", reason="pycocotools is in the eval/dev extras")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


def _random_coco(seed):
    """A random COCO dataset: several categories (one never labelled), crowd boxes, empty images,
    areas that differ from box areas (as segment areas do), detections that jitter, duplicate, miss."""
    rng = np.random.default_rng(seed)
    q = lambda a: np.round(np.asarray(a) * 8) / 8  # noqa: E731 - exact in float32 and float64
    cat_ids = [1, 3, 7, 12][: int(rng.integers(2, 5))]
    images, anns, dets = [], [], []
    n_img = int(rng.integers(5, 25))
    for img_id in range(1, n_img + 1):
        w, h = int(rng.integers(100, 640)), int(rng.integers(100, 480))
        images.append({"id": img_id, "width": w, "height": h})
        n_gt = 0 if rng.random() < 0.15 else int(rng.integers(1, 12))
        img_gts = []
        for _ in range(n_gt):
            bw, bh = q(rng.uniform(4, w / 2)), q(rng.uniform(4, h / 2))
            x, y = q(rng.uniform(0, w - bw)), q(rng.uniform(0, h - bh))
            cat = int(rng.choice(cat_ids[:-1]))  # the last category has no labels at all
            crowd = int(rng.random() < 0.1)
            ann = {"id": len(anns) + 1, "image_id": img_id, "category_id": cat,
                   "bbox": [float(x), float(y), float(bw), float(bh)],
                   "area": float(bw * bh * rng.uniform(0.5, 1.0)), "iscrowd": crowd}
            anns.append(ann)
            img_gts.append(ann)
        if rng.random() < 0.1:
            continue  # an image without detections
        for g in img_gts:
            for _ in range(int(rng.integers(0, 3))):
                x, y, bw, bh = g["bbox"]
                jit = q(rng.normal(0, 0.15, 4) * [bw, bh, bw, bh])
                nb = [x + jit[0], y + jit[1], max(1.0, bw + jit[2]), max(1.0, bh + jit[3])]
                cat = g["category_id"] if rng.random() < 0.85 else int(rng.choice(cat_ids))
                dets.append({"image_id": img_id, "category_id": cat, "bbox": [float(v) for v in nb],
                             "score": float(np.round(rng.uniform(0, 1), 2))})
        for _ in range(int(rng.integers(0, 6))):
            bw, bh = q(rng.uniform(2, w / 3)), q(rng.uniform(2, h / 3))
            dets.append({"image_id": img_id, "category_id": int(rng.choice(cat_ids)),
                         "bbox": [float(q(rng.uniform(0, w - bw))), float(q(rng.uniform(0, h - bh))),
                                  float(bw), float(bh)],
                         "score": float(np.round(rng.uniform(0, 1), 2))})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": c, "name": f"c{c}"} for c in cat_ids]}
    return gt, dets


def _pycocotools_stats(gt, dets):
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        res = coco.loadRes(dets)
        ev = COCOeval(coco, res, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def _ours(gt, dets, **kw):
    cat_ids = sorted(c["id"] for c in gt["categories"])
    index = {c: i for i, c in enumerate(cat_ids)}
    m = DetectionMetrics(len(cat_ids), **kw)
    for img in sorted(gt["images"], key=lambda i: i["id"]):
        g = [a for a in gt["annotations"] if a["image_id"] == img["id"]]
        d = [r for r in dets if r["image_id"] == img["id"]]
        m.update_xywh(np.array([r["bbox"] for r in d]).reshape(-1, 4), np.array([r["score"] for r in d]),
                      np.array([index.get(r["category_id"], -1) for r in d], np.int64),
                      np.array([a["bbox"] for a in g]).reshape(-1, 4),
                      np.array([index[a["category_id"]] for a in g], np.int64),
                      np.array([bool(a["iscrowd"]) for a in g], bool), np.zeros(len(g), bool),
                      np.array([a["area"] for a in g], np.float64))
    return m.compute()


@pytest.mark.parametrize("seed", range(12))
def test_coco_stats_equal_pycocotools(seed):
    gt, dets = _random_coco(seed)
    if not dets:
        pytest.skip("no detections drawn")
    ev = _pycocotools_stats(gt, dets)
    ours = _ours(gt, dets)
    assert len(ours.stats) == len(COCO_STAT_NAMES)
    np.testing.assert_allclose(ours.stats, ev.stats, atol=1e-6, rtol=0)
    # per-class AP (area all, 100 dets) from COCO's precision array
    prec = ev.eval["precision"][:, :, :, 0, 2]
    for k in range(prec.shape[2]):
        v = prec[:, :, k]
        expected = v[v > -1].mean() if (v > -1).any() else np.nan
        np.testing.assert_allclose(ours.ap[k], expected, atol=1e-6)


def test_coco_max_dets_cut_per_image_and_class():
    gt, dets = _random_coco(3)
    # flood one image with detections so that maxDets=1/10/100 cuts bite
    rng = np.random.default_rng(0)
    for _ in range(150):
        dets.append({"image_id": 1, "category_id": gt["categories"][0]["id"],
                     "bbox": [float(v) for v in np.round(rng.uniform(0, 60, 4) * 8) / 8 + [0, 0, 1, 1]],
                     "score": float(np.round(rng.uniform(0, 1), 2))})
    ev = _pycocotools_stats(gt, dets)
    np.testing.assert_allclose(_ours(gt, dets).stats, ev.stats, atol=1e-6, rtol=0)
