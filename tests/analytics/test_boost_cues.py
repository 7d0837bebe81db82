"""BoostTrack's cues in the tracker (issue 23, fourth round): the detection boosts (a weak detection on a
known track counts as strong; a weak one no track explains may start a track), the track's recency, the
shape and motion (Mahalanobis) similarities. Each against a textbook or brute-force form, and on constructed
scenes where the right outcome is known."""
import itertools

import numpy as np
import pytest

from edge_app.analytics import kalman
from edge_app.analytics.association import likelihood_share, shape_similarity, strongest_apart
from edge_app.analytics.tracker import Tracker
from edge_app.config.schema import TrackerConfig
from edge_app.core.types import Detections


def _settings(**kw):
    base = dict(reupdate=False, direction_weight=0.0, recover_buffer=0.0, freeze_lost_size=False, recover_last=False,
                measurement_noise=1.0, low_revives_lost=False)
    return TrackerConfig(**{**base, **kw})


def _det(boxes, scores):
    b = np.array(boxes, np.float32).reshape(-1, 4)
    return Detections(b, np.asarray(scores, np.float32), np.zeros(len(b), np.int64))


@pytest.mark.parametrize("noise", [1.0, 4.0])
def test_mahalanobis_is_the_textbook_innovation_distance(noise):
    rng = np.random.default_rng(1)
    mean, cov = kalman.initiate(np.abs(rng.normal(100, 30, (4, 4))) + 1)
    mean, cov = kalman.predict(mean, cov, 2 / 30)
    z = mean[:, :4] + rng.normal(0, 5, (4, 4))
    P = kalman.full_covariance(cov)
    H = np.hstack([np.eye(4), np.zeros((4, 4))])
    want = np.zeros((4, 4))
    for i, j in itertools.product(range(4), range(4)):
        h = mean[i, 3]
        R = np.diag(np.array([h / 20, h / 20, 1e-1, h / 20]) ** 2) * noise ** 2
        d = z[j] - mean[i, :4]
        want[i, j] = d @ np.linalg.solve(H @ P[i] @ H.T + R, d)
    got = kalman.mahalanobis(mean[:, None], cov[:, None], z[None], noise)
    np.testing.assert_allclose(got, want, rtol=1e-9)
    np.testing.assert_allclose(kalman.mahalanobis(mean, cov, z, noise), np.diag(want), rtol=1e-9)


def test_shape_similarity_brute_force():
    a = np.array([[0, 0, 10, 20], [0, 0, 10, 20], [5, 5, 25, 15]], float)
    b = np.array([[3, 3, 13, 23], [0, 0, 20, 10], [0, 0, 10, 40]], float)
    want = [np.exp(-(abs(wa - wb) / max(wa, wb) + abs(ha - hb) / max(ha, hb)))
            for (wa, ha), (wb, hb) in zip([(10, 20), (10, 20), (20, 10)], [(10, 20), (20, 10), (10, 40)])]
    np.testing.assert_allclose(shape_similarity(a, b), want)
    assert shape_similarity(a, b)[0] == 1.0  # same size elsewhere: alike


def test_likelihood_share_splits_each_tracks_likelihood_over_its_detections():
    rows = np.array([0, 0, 1, 2, 2])
    d2 = np.array([1.0, 3.0, 2.0, 20.0, 0.5])
    got = likelihood_share(rows, d2, kalman.CHI2_4_99)
    e = np.exp(-0.5 * np.array([1.0, 3.0]))
    np.testing.assert_allclose(got[:2], e / e.sum())
    assert got[2] == pytest.approx(1.0)                          # the track's only detection
    assert got[3] == 0.0 and got[4] == pytest.approx(1.0)        # beyond the 99 % limit: no share


def test_strongest_apart_keeps_one_box_per_overlapping_cluster():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60], [2, 0, 12, 10], [100, 0, 110, 10]], float)
    scores = np.array([0.2, 0.4, 0.3, 0.1, 0.2])
    assert strongest_apart(boxes, scores, 0.3).tolist() == [False, True, True, False, True]
    tied = strongest_apart(boxes[:2], np.array([0.3, 0.3]), 0.3)
    assert tied.tolist() == [True, False]


def _fading(boost):
    """An object walking, seen at 0.9 for 10 frames, then at 0.3 (below low_score 0.35: ignored as such)."""
    t = Tracker(_settings(low_score=0.35, boost_overlap=boost, lost_s=5.0))
    shown = []
    for f in range(30):
        x = 100 + 2 * f
        tr = t.update(_det([[x, 50, x + 30, 110]], [0.9 if f < 10 else 0.3]), f / 30)
        shown.append(len(tr))
    return shown


def test_a_weak_detection_on_a_tracks_predicted_box_counts_as_strong():
    assert sum(_fading(0.0)[10:]) == 0       # without the boost the weak detections are nobody's
    assert all(_fading(0.65)[10:])           # IoU ~0.9 x 0.65 >= high_score 0.5: the track goes on


def test_a_weak_detection_no_track_explains_may_start_a_track():
    def run(unexplained):
        t = Tracker(_settings(min_hits=1, boost_unexplained=unexplained))
        t.update(_det([[0, 0, 20, 40]], [0.9]), 0.0)  # a track far away: the boost needs a track to compare to
        # a weak object far from it, and a weaker duplicate of it
        tr = t.update(_det([[0, 0, 20, 40], [300, 300, 330, 360], [302, 300, 332, 360]], [0.9, 0.3, 0.2]), 1 / 30)
        return sorted(float(b[0]) for b in tr.boxes)
    assert run(False) == [0.0]
    assert run(True) == [0.0, 300.0]  # the strongest of the pair only


def test_recency_keeps_a_tracked_objects_id_from_a_lost_one_where_it_stood():
    # B stands at x=200 (frames 0-9), then is hidden; A walks in from the left and stops at x=200 at frame
    # 20 (its prediction overshoots); the detection there overlaps B's old box more than A's prediction
    def run(recency):
        t = Tracker(_settings(recency_weight=recency, lost_s=3.0, match_iou=0.2))
        ids = {}
        for f in range(26):
            xa = min(100 + 5 * f, 200)
            boxes, scores = [[xa, 50, xa + 30, 110]], [0.9]
            if f < 10:
                boxes.append([200, 50, 230, 110])
                scores.append(0.9)
            tr = t.update(_det(boxes, scores), f / 30)
            for i, b in zip(tr.ids.tolist(), tr.boxes):
                ids.setdefault(f, {})[i] = float(b[0])
        a_id = next(i for i, x in ids[12].items() if x < 200)
        return a_id, ids[22]
    a_id, at_22 = run(0.0)
    assert a_id not in at_22                 # without it, B's identity took A's detection
    a_id, at_22 = run(1.0)
    assert at_22.get(a_id) == 200.0          # with it, A keeps its own


def test_every_cue_on_still_keeps_crossing_objects_apart():
    t = Tracker(_settings(boost_overlap=0.65, boost_unexplained=True, recency_weight=1.0, shape_weight=0.25,
                          motion_weight=0.25, direction_weight=0.2))
    first = last = None
    for f in range(40):
        tr = t.update(_det([[10 + 5 * f, 50, 40 + 5 * f, 110], [210 - 5 * f, 52, 240 - 5 * f, 112]], [0.9, 0.6]), f / 30)
        pos = {int(i): float(b[0]) for i, b in zip(tr.ids, tr.boxes)}
        if f == 5:
            first = next(i for i, x in pos.items() if x < 100)
        last = pos
    assert first is not None and last[first] > 150
