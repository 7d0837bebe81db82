"""The tracker on constructed scenes where the right identities are known: objects crossing, a short and a
long occlusion, a weak detection keeping a track, one-frame false positives, classes never mixing, the
lost buffer in seconds at any frame rate; the block-diagonal Kalman equals the textbook 8 x 8 filter."""
import numpy as np
import pytest

from edge_app.analytics import kalman
from edge_app.analytics.tracker import Tracker, assign, candidate_pairs
from edge_app.config.schema import TrackerConfig as TrackerSettings
from edge_app.core.boxes import iou_matrix
from edge_app.core.types import Detections


def _det(boxes, scores=None, classes=None):
    b = np.array(boxes, np.float32).reshape(-1, 4)
    return Detections(b, np.full(len(b), 0.9) if scores is None else scores,
                      np.zeros(len(b), np.int64) if classes is None else classes)


def _walk(x0, vx, f, y=50, w=30, h=60):
    x = x0 + vx * f
    return [x, y, x + w, y + h]


def _ids_over(tracker, frames, fps=30.0):
    """[(frame, {id: x1})] for a list of per-frame box lists."""
    out = []
    for f, boxes in enumerate(frames):
        tr = tracker.update(_det(boxes) if boxes else Detections.empty(), f / fps)
        out.append({int(i): float(b[0]) for i, b in zip(tr.ids, tr.boxes)})
    return out


def test_objects_crossing_keep_their_ids():
    frames = [[_walk(10, 5, f), _walk(210, -5, f, y=52)] for f in range(40)]
    seen = _ids_over(Tracker(), frames)
    left_start = {i for i, x in seen[5].items() if x < 100}
    assert len(left_start) == 1
    (left_id,) = left_start
    assert seen[-1][left_id] > 150  # the object that started left ended right: no swap at the crossing
    assert sorted(seen[-1]) == sorted(seen[5])


def test_a_short_occlusion_keeps_the_id_a_long_one_ends_it():
    s = TrackerSettings(lost_s=1.0)
    frames = [[_walk(10, 3, f)] if not 10 <= f < 25 else [] for f in range(40)]  # hidden for 0.5 s
    seen = _ids_over(Tracker(s), frames)
    assert set(seen[9]) == set(seen[30]) and len(seen[30]) == 1   # the same id after the gap
    frames = [[_walk(10, 3, f)] if not 10 <= f < 50 else [] for f in range(70)]  # hidden for 1.3 s
    seen = _ids_over(Tracker(s), frames)
    assert seen[9] and seen[65] and set(seen[9]) != set(seen[65])  # past the buffer: a new identity


@pytest.mark.parametrize("fps", [10.0, 30.0])
def test_the_lost_buffer_is_in_seconds(fps):
    s = TrackerSettings(lost_s=1.0)
    speed = 90.0 / fps  # 90 px/s whatever the frame rate
    n = int(3 * fps)
    gap = range(int(1.0 * fps), int(1.8 * fps))  # 0.8 s hidden: within 1 s at either rate
    frames = [[_walk(10, speed, f)] if f not in gap else [] for f in range(n)]
    seen = _ids_over(Tracker(s), frames, fps)
    before, after = seen[gap.start - 1], seen[-1]
    assert before and set(before) == set(after)


def test_a_weak_detection_keeps_the_track_alive():
    s = TrackerSettings()
    frames, scores = [], []
    t = Tracker(s)
    ids = []
    for f in range(30):
        score = 0.3 if 10 <= f < 20 else 0.9  # partly occluded: the detector is unsure
        tr = t.update(_det([_walk(10, 2, f)], [score]), f / 30)
        ids.append(tuple(tr.ids.tolist()))
    assert all(len(x) == 1 for x in ids[12:]) and len(set(ids[5:])) == 1  # tracked through, one id
    assert t.confirmed_total == 1


def test_one_frame_false_positives_never_get_an_id():
    t = Tracker(TrackerSettings(min_hits=3))
    got = set()
    for f in range(30):
        boxes = [_walk(10, 2, f)]
        if f % 5 == 0:
            boxes.append([400 + f, 300, 430 + f, 360])  # a flicker, never twice in a row
        got |= set(t.update(_det(boxes), f / 30).ids.tolist())
    assert len(got) == 1 and t.confirmed_total == 1


def test_ids_are_given_at_confirmation_in_order():
    t = Tracker(TrackerSettings(min_hits=3))
    outs = [t.update(_det([_walk(10, 2, f), _walk(300, 2, f)]), f / 30) for f in range(5)]
    assert [len(o) for o in outs] == [0, 0, 2, 2, 2]   # nothing before the third hit
    assert sorted(outs[2].ids.tolist()) == [1, 2]


def test_classes_never_mix():
    t = Tracker()
    for f in range(10):
        tr = t.update(_det([_walk(10, 2, f), _walk(12, 2, f)], classes=np.array([0, 1])), f / 30)
    assert sorted(tr.classes.tolist()) == [0, 1] and len(set(tr.ids.tolist())) == 2


def test_sparse_candidates_and_component_assignment_equal_the_dense_solution():
    from scipy.optimize import linear_sum_assignment
    rng = np.random.default_rng(1)
    for trial in range(200):
        a = rng.uniform(0, 300, (rng.integers(0, 60), 2)); a = np.concatenate([a, a + rng.uniform(1, 60, a.shape)], 1)
        b = rng.uniform(0, 300, (rng.integers(0, 60), 2)); b = np.concatenate([b, b + rng.uniform(1, 60, b.shape)], 1)
        r, c = candidate_pairs(a, b)
        assert set(zip(r.tolist(), c.tolist())) == set(zip(*np.nonzero(iou_matrix(a, b) > 0))), trial
    for trial in range(300):
        n, m = rng.integers(1, 12), rng.integers(1, 12)
        sim = rng.uniform(0, 1, (n, m))
        allowed = rng.uniform(0, 1, (n, m)) < 0.3
        r, c = np.nonzero(allowed)
        mr, mc = assign(r, c, sim[r, c], n, m)
        rows, cols = linear_sum_assignment(np.where(allowed, 1 - sim, 1e6))
        ok = allowed[rows, cols]
        assert len(mr) == ok.sum() and sim[mr, mc].sum() == pytest.approx(sim[rows[ok], cols[ok]].sum())


def test_block_kalman_equals_the_8x8_filter():
    rng = np.random.default_rng(0)
    z0 = np.abs(rng.normal(100, 30, (5, 4))) + 1
    mean, cov = kalman.initiate(z0)
    M, P = mean.copy(), kalman.full_covariance(cov)
    for step in range(6):
        dt = (1 + step % 3) / 30
        mean, cov = kalman.predict(mean, cov, dt)
        s = dt / kalman.FRAME_S
        F = np.eye(8)
        F[np.arange(4), np.arange(4) + 4] = s
        h = M[:, 3]
        q = np.stack([h / 20, h / 20, np.full_like(h, 1e-2), h / 20, h / 160, h / 160, np.full_like(h, 1e-5), h / 160], 1)
        M = M @ F.T
        P = np.einsum("ij,njk,lk->nil", F, P, F) + np.stack([np.diag(v) for v in q ** 2 * s])
        z = M[:, :4] + rng.normal(0, 2, (5, 4))
        mean, cov = kalman.update(mean, cov, z)
        h = M[:, 3]
        R = np.stack([np.diag(v) for v in np.stack([h / 20, h / 20, np.full_like(h, 1e-1), h / 20], 1) ** 2])
        H = np.hstack([np.eye(4), np.zeros((4, 4))])
        S = H @ P @ H.T + R
        K = P @ H.T @ np.linalg.inv(S)
        M = M + np.einsum("nij,nj->ni", K, z - M[:, :4])
        P = P - K @ S @ K.transpose(0, 2, 1)
        np.testing.assert_allclose(mean, M, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(kalman.full_covariance(cov), P, rtol=1e-9, atol=1e-9)
