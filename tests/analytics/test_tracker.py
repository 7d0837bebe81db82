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


def _settings(**kw):
    base = dict(reupdate=False, direction_weight=0.0, recover_buffer=0.0, freeze_lost_size=False, recover_last=False)
    return TrackerSettings(**{**base, **kw})


def test_reupdate_is_the_filter_run_along_the_straight_path_through_the_gap():
    # OC-SORT's ORU: a track found again after 15 hidden frames ends as a filter fed, frame by frame,
    # with observations on the straight line from its last box to the new one (here fed explicitly)
    def box(x):
        return [x, 50, x + 100, 250]
    xs = [10 + 2 * f for f in range(20)]
    end = 130.0                                   # where it reappears at frame 35 (it sped up meanwhile)
    oru = Tracker(_settings(reupdate=True, lost_s=2.0))
    fed = Tracker(_settings(reupdate=False, lost_s=2.0))
    plain = Tracker(_settings(reupdate=False, lost_s=2.0))
    for f in range(36):
        hidden = 20 <= f < 35
        x = xs[f] if f < 20 else (end if f == 35 else None)
        for t in (oru, plain):
            t.update(_det([box(x)]) if not hidden else Detections.empty(), f / 30)
        virtual = xs[19] + (end - xs[19]) * (f - 19) / 16 if f >= 20 else x
        fed.update(_det([box(virtual)]), f / 30)
    assert len(oru) == len(fed) == 1 and oru.confirmed_total == 1
    np.testing.assert_allclose(oru.mean[0], fed.mean[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(oru.cov[0], fed.cov[0], rtol=1e-6, atol=1e-6)
    assert np.abs(plain.mean[0] - fed.mean[0]).max() > 0.1   # which the plain update is not


def _walker_that_stops_while_hidden(**settings) -> set[int]:
    """Walking at 3 px/frame, it stops while hidden for 10 frames (20..29): the prediction walks on 30 px,
    past the IoU gate of its 30 px box. Returns the track ids it was given."""
    t = Tracker(_settings(lost_s=2.0, **settings))
    ids: set[int] = set()
    for f in range(60):
        x = 100 + 3 * min(f, 20) if not 20 <= f < 30 else None
        tr = t.update(_det([[x, 50, x + 30, 110]]) if x is not None else Detections.empty(), f / 30)
        ids |= set(tr.ids.tolist())
    return ids


def test_recovery_finds_a_lost_track_that_moved_further_than_predicted():
    # grown boxes (recover_buffer) still find it: one identity instead of two
    assert len(_walker_that_stops_while_hidden(recover_buffer=0.0)) == 2
    assert len(_walker_that_stops_while_hidden(recover_buffer=0.5)) == 1


def test_observation_centric_recovery_finds_an_object_where_it_was_last_seen():
    # OC-SORT's OCR matches the box where it was last seen
    assert len(_walker_that_stops_while_hidden(recover_last=False)) == 2
    assert len(_walker_that_stops_while_hidden(recover_last=True)) == 1


def test_direction_consistency_keeps_crossing_objects_apart():
    from edge_app.analytics.association import direction_consistency
    heading = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    last = np.zeros((4, 2))
    dets = np.array([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [5.0, 0.0]])
    np.testing.assert_allclose(direction_consistency(heading, last, dets), [0.5, -0.5, 0.0, 0.0])


def test_camera_motion_is_measured_from_the_frames():
    pytest.importorskip("cv2")
    from edge_app.analytics.motion import CameraMotion
    rng = np.random.default_rng(0)
    scene = (rng.uniform(0, 255, (600, 1100)) > 200).astype(np.uint8) * 255  # texture to follow
    import cv2
    scene = cv2.GaussianBlur(scene, (5, 5), 0)
    cm = CameraMotion(width=480)
    assert cm.estimate(np.ascontiguousarray(scene[0:480, 0:960])) is None       # the first frame
    warp = cm.estimate(np.ascontiguousarray(scene[12:492, 30:990]))             # the camera moved right/down
    assert warp is not None
    np.testing.assert_allclose(warp[:, 2], [-30, -12], atol=1.5)                 # the scene moved left/up
    np.testing.assert_allclose(warp[:, :2], np.eye(2), atol=0.02)


def test_camera_motion_ignores_the_objects_it_is_given():
    # a fixed camera: a sparse textured background, and a large, busy object (a crowd) moving 15 px right per
    # frame. Unmasked, most corners are on the object and the fit follows it; masked by its box, the fit is
    # the background's: no motion.
    pytest.importorskip("cv2")
    import cv2
    from edge_app.analytics.motion import CameraMotion
    rng = np.random.default_rng(2)
    background = np.zeros((480, 960), np.uint8)
    for y, x in zip(rng.integers(10, 470, 60), rng.integers(10, 950, 60)):
        cv2.circle(background, (int(x), int(y)), 4, 255, -1)
    crowd = cv2.GaussianBlur((rng.uniform(0, 255, (300, 400)) > 150).astype(np.uint8) * 255, (3, 3), 0)

    def frames():
        for f in range(2):
            image = background.copy()
            x = 200 + 15 * f
            image[100:400, x:x + 400] = crowd
            yield image, np.array([[x, 100, x + 400, 400]], float)

    def shift(masked: bool) -> np.ndarray:
        cm = CameraMotion(width=960, corners=400)
        warp = None
        for image, box in frames():
            warp = cm.estimate(image, box if masked else None)
        return np.zeros(2) if warp is None else warp[:, 2]
    assert shift(False)[0] > 10                              # the crowd outvotes the background
    np.testing.assert_allclose(shift(True), [0, 0], atol=1.0)  # masked: the camera stood still


def test_a_panning_camera_keeps_identities_with_compensation():
    pytest.importorskip("cv2")
    import cv2
    rng = np.random.default_rng(1)
    world = cv2.GaussianBlur((rng.uniform(0, 255, (700, 3000)) > 200).astype(np.uint8) * 255, (5, 5), 0)
    world = np.repeat(world[:, :, None], 3, axis=2)

    def run(mode):
        # SORT's filter (measurement_noise 1): with the default 4 the filter's motion absorbs this pan even
        # uncompensated; the pan's effect on a filter that follows the boxes closely is what is tested here
        t = Tracker(_settings(camera_motion=mode, lost_s=1.0, measurement_noise=1.0))
        ids = set()
        for f in range(40):
            pan = 0 if f < 10 else 25 * (f - 10)   # a still camera, then a fast pan (25 px/frame)
            frame = np.ascontiguousarray(world[100:580, pan:pan + 640])
            x = 300 - pan + 0 * f                 # a person standing still in the world
            boxes = [[x, 200, x + 40, 300]] if -40 < x < 640 and f % 4 != 3 else []  # missed every 4th frame
            tr = t.update(_det(boxes) if boxes else Detections.empty(), f / 30, frame)
            ids |= set(tr.ids.tolist())
        return ids
    assert len(run("flow")) == 1 and len(run("off")) > 1


def test_colour_histograms_tell_people_apart():
    pytest.importorskip("cv2")
    from edge_app.analytics.appearance import ColourHistogram
    frame = np.zeros((200, 300, 3), np.uint8)
    frame[:, :100] = (0, 0, 200)      # a red coat (BGR)
    frame[:, 100:200] = (200, 0, 0)   # a blue one
    frame[:, 200:] = (10, 10, 190)    # red again, another shade
    e = ColourHistogram().embed(frame, np.array([[0, 0, 100, 200], [100, 0, 200, 200], [200, 0, 300, 200]], float))
    assert e.shape[0] == 3 and np.allclose(np.linalg.norm(e, axis=1), 1)
    assert e[0] @ e[2] > 0.9 and e[0] @ e[1] < 0.1


def test_measurement_noise_is_the_textbook_filter_with_a_larger_r():
    # the block filter with measurement noise k equals the 8 x 8 filter whose R is k^2 times SORT's
    rng = np.random.default_rng(1)
    z0 = np.abs(rng.normal(100, 30, (3, 4))) + 1
    for k in (1.0, 3.0):
        mean, cov = kalman.initiate(z0)
        M, P = mean.copy(), kalman.full_covariance(cov)
        mean, cov = kalman.predict(mean, cov, 1 / 30)
        M, P = mean.copy(), kalman.full_covariance(cov)
        z = M[:, :4] + rng.normal(0, 2, (3, 4))
        mean, cov = kalman.update(mean, cov, z, noise=k)
        h = M[:, 3]
        R = np.stack([np.diag(v) for v in (k * np.stack([h / 20, h / 20, np.full_like(h, 1e-1), h / 20], 1)) ** 2])
        H = np.hstack([np.eye(4), np.zeros((4, 4))])
        S = H @ P @ H.T + R
        K = P @ H.T @ np.linalg.inv(S)
        np.testing.assert_allclose(mean, M + np.einsum("nij,nj->ni", K, z - M[:, :4]), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(kalman.full_covariance(cov), P - K @ S @ K.transpose(0, 2, 1), rtol=1e-9, atol=1e-9)


def test_a_larger_measurement_noise_smooths_the_velocity_of_a_jittery_box():
    rng = np.random.default_rng(2)
    spread = {}
    for k in (1.0, 4.0):
        t = Tracker(_settings(measurement_noise=k, min_hits=1))
        vx = []
        for f in range(90):
            x = 100 + 2 * f + rng.normal(0, 4)   # walking 2 px/frame, the box jitters by 4 px
            t.update(_det([[x, 50, x + 40, 150]]), f / 30)
            if f >= 30:
                vx.append(t.mean[0, 4])
        spread[k] = np.std(vx)
        assert abs(np.mean(vx) - 2) < 0.5
    assert spread[4.0] < 0.6 * spread[1.0]


def test_a_track_hidden_behind_another_is_kept_longer():
    # B walks behind A (a wide object whose box is lower: in front) and is hidden 4 s; lost_s = 1 s would
    # end it; occluded_lost_s keeps it while its predicted box stays behind A's
    def run(occluded):
        t = Tracker(_settings(lost_s=1.0, occluded_lost_s=occluded))
        ids = set()
        for f in range(200):
            xb = 2 * f
            boxes = [[100, 20, 400, 160]] + ([[xb, 30, xb + 50, 130]] if not 100 <= xb <= 350 else [])
            tr = t.update(_det(boxes), f / 30)
            ids |= set(tr.ids.tolist())
        return ids
    assert len(run(0.0)) == 3 and len(run(5.0)) == 2


def test_motion_recovery_finds_a_lost_track_beyond_the_iou_gate():
    # it keeps walking while hidden but faster than before: the prediction falls short, no IoU left;
    # within 1 box height of the prediction and ahead of its heading, recover_motion finds it
    def run(motion):
        t = Tracker(_settings(recover_motion=motion, lost_s=2.0, direction_weight=0.2))
        ids = set()
        for f in range(60):
            x = 100 + 2 * f if f < 20 else 140 + 5 * (f - 20)
            tr = t.update(_det([[x, 50, x + 30, 110]]) if not 20 <= f < 30 else Detections.empty(), f / 30)
            ids |= set(tr.ids.tolist())
        return ids
    assert len(run(0.0)) == 2 and len(run(1.0)) == 1


def test_depth_cascade_passes_what_a_band_leaves_to_the_next():
    # three people at three depths (box bottoms 100, 240, 400: with 2 bands the border is at 250); the middle
    # one bobs across the border every frame, so its track and its detection fall in different bands: the
    # near band leaves its detection unmatched and the far band takes it, and no identity is lost
    def frame(f):
        bob = 15 if f % 2 else 0
        return [[100, 0, 160, 100], [300, 140 + bob, 360, 240 + bob], [500, 250, 590, 400]]
    for levels in (1, 2, 3):
        t = Tracker(_settings(depth_levels=levels, min_hits=1, measurement_noise=1.0))
        ids = set()
        for f in range(12):
            ids |= set(t.update(_det(frame(f)), f / 30).ids.tolist())
        assert ids == {1, 2, 3}, (levels, ids)


def test_depth_cascade_settles_the_near_object_first():
    # a near track N and a far one F (box bottoms 400 and 374) and two detections: N overlaps d1 most
    # (IoU 0.56 vs 0.49), but F overlaps d1 even more (0.64) and d2 little (0.41), so the one global assignment
    # (the most IoU in all: 0.64 + 0.49 > 0.56 + 0.41) gives d1 to F and d2 to N; with two depth bands
    # (border at 384: N and d1 near, F and d2 far) the near track chooses first and keeps d1
    near, far = [100, 200, 200, 400], [81, 174, 181, 374]
    d1, d2 = [73, 204, 173, 404], [120, 165, 220, 365]
    got = {}
    for levels in (1, 2):
        t = Tracker(_settings(depth_levels=levels, min_hits=1, shape_weight=0.0, report="detection"))
        first = t.update(_det([near, far]), 0.0)
        assert first.ids.tolist() == [1, 2]
        out = t.update(_det([d1, d2]), 1 / 30)
        got[levels] = {int(i): b.astype(int).tolist() for i, b in zip(out.ids, out.boxes)}
    assert got[1] == {1: d2, 2: d1}
    assert got[2] == {1: d1, 2: d2}
