import numpy as np
import pytest

from edge_app.core.segmentation_metrics import SegmentationMetrics, confusion_matrix


def _direct(preds, truths, num_classes, ignore):
    """Per-class IoU, Dice, precision, recall and pixel accuracy counted pixel by pixel."""
    tp = np.zeros(num_classes); fp = np.zeros(num_classes); fn = np.zeros(num_classes)
    correct = total = 0
    for p, t in zip(preds, truths):
        for pv, tv in zip(p.ravel().tolist(), t.ravel().tolist()):
            if tv == ignore:
                continue
            total += 1
            if pv == tv:
                tp[tv] += 1; correct += 1
            else:
                fp[pv] += 1; fn[tv] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)
        dice = np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
        prec = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        rec = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
    return iou, dice, prec, rec, correct / total


@pytest.mark.parametrize("seed", range(5))
def test_against_direct_computation(seed):
    rng = np.random.default_rng(seed)
    c, ignore = 5, 255
    preds, truths = [], []
    m = SegmentationMetrics(c, ignore_index=ignore)
    for _ in range(4):
        t = rng.integers(0, c - 1, (17, 23))  # class 4 never true: NaN recall, IoU from FPs only
        t[rng.random(t.shape) < 0.1] = ignore
        p = np.where(rng.random(t.shape) < 0.7, np.where(t == ignore, 0, t), rng.integers(0, c, t.shape))
        preds.append(p); truths.append(t)
        m.update(p, t)
    r = m.compute()
    iou, dice, prec, rec, acc = _direct(preds, truths, c, ignore)
    np.testing.assert_allclose(r.iou, iou)
    np.testing.assert_allclose(r.dice, dice)
    np.testing.assert_allclose(r.precision, prec)
    np.testing.assert_allclose(r.recall, rec)
    assert r.pixel_accuracy == pytest.approx(acc)
    assert r.miou == pytest.approx(np.nanmean(iou))
    assert np.isnan(r.recall[4])
    assert len(m) == 4


def test_perfect_and_empty():
    t = np.array([[0, 1], [1, 1]])
    r = SegmentationMetrics(3).compute()
    assert np.isnan(r.miou) and np.isnan(r.pixel_accuracy)
    m = SegmentationMetrics(3)
    m.update(t, t)
    r = m.compute()
    assert r.miou == 1.0 and r.pixel_accuracy == 1.0 and np.isnan(r.iou[2])


def test_rolling_window():
    m = SegmentationMetrics(2, window=2)
    good = np.ones((4, 4), int)
    bad = np.zeros((4, 4), int)
    m.update(bad, good, timestamp=0)
    m.update(good, good, timestamp=1)
    m.update(good, good, timestamp=2)
    assert len(m) == 2 and m.compute().pixel_accuracy == 1.0
    m.update(bad, good, timestamp=3)
    assert m.compute().pixel_accuracy == 0.5
    m.prune(before=2.5)
    assert len(m) == 1 and m.compute().pixel_accuracy == 0.0


@pytest.mark.parametrize("pred, truth, message", [
    (np.zeros((2, 2), int), np.zeros((3, 2), int), "sizes differ"),
    (np.zeros((2, 2), int), np.full((2, 2), 9), "truth has class 9"),
    (np.full((2, 2), 5), np.zeros((2, 2), int), "prediction has class 5"),
])
def test_bad_input(pred, truth, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(pred, truth, 3, ignore_index=255)
