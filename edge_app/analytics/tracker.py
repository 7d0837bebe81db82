"""A ByteTrack-style multi-object tracker with OC-SORT's observation-centric cues: two-stage association,
a Kalman constant-velocity motion model, birth after N hits, a lost buffer in seconds, per-class tracks,
IoU gating, and what keeps identities through occlusion when it pays (chosen out-of-sample, docs/tracking.md).

Per frame (``update(detections, t, frame=None)``):
0. with a frame, the camera's motion since the last one moves every track (``motion.py``);
1. every track is predicted to time ``t`` (seconds: the buffer and the motion hold at any frame rate);
2. tracked and lost tracks are matched to the high-score detections (IoU, optionally weighted by the
   detection score, plus the direction, BoostTrack's shape / recency / motion and the appearance cues),
   gated at ``match_iou`` (BoostTrack's boosts, when on, first raise the scores association sees); 3. tracks still
   unmatched that were tracked last frame get a second chance with the low-score detections
   (``low_iou``): a partly occluded object keeps its identity on a weak detection; 4. lost tracks still
   unmatched get a last chance with grown boxes (``recover_buffer``): an object that moved further than
   the filter guessed while hidden, and (``recover_last``) by the box where they were last seen;
   5. tentative tracks (not yet ``min_hits`` hits) are matched to what
   high-score detections remain (``tentative_iou``), and die on a miss; 6. high-score detections left
   over start tentative tracks; tracks lost longer than ``lost_s`` end.
A track found again after a gap re-runs its filter along the straight path between its last observation
and the new one (``reupdate``), so its velocity is the one it had while hidden, not a stale guess.
Only a confirmed track has an identity: ids are given at confirmation, in order, never reused.
Classes never mix: a track matches detections of its own class only.
"""
from __future__ import annotations

import numpy as np

from ..config.schema import TrackerConfig
from ..core.types import Detections, Tracks
from . import kalman
from .association import (_lsap, assign, candidate_pairs, covered, direction_consistency, expand, likelihood_share,
                          overlaps, pair_iou, shape_similarity, strongest_apart)
from .base import BaseTracker

__all__ = ["Tracker", "assign", "candidate_pairs", "overlaps", "pair_iou"]

TENTATIVE, TRACKED, LOST = 0, 1, 2
_PER_TRACK = ("mean", "cov", "ids", "classes", "scores", "hits", "state", "seen", "last_z", "last_mean",
              "last_cov", "heading", "emb")


class Tracker(BaseTracker):
    """One stream's tracker: ``update(detections, t, frame=None) -> Tracks`` (confirmed, updated this frame)."""

    def __init__(self, settings: TrackerConfig | None = None, groups: np.ndarray | None = None) -> None:
        """settings: the detector's ``[models.NAME.tracker]`` table (defaults chosen leave-one-sequence-out
        on the shared MOTChallenge public detections; see docs/tracking.md). groups: (C,) the class group of each
        class id (the detector's class_groups): classes of one group match one track (a car seen as a truck)."""
        self.s = settings or TrackerConfig()
        self.groups = None if groups is None else np.asarray(groups, np.int64)
        _lsap()  # import the solver now, not on a frame
        self.motion = None
        if self.s.camera_motion == "flow":
            from .motion import CameraMotion
            self.motion = CameraMotion()
        self.appearance = None
        if self.s.appearance_weight > 0:
            from .appearance import ColourHistogram
            self.appearance = ColourHistogram()
        self.reset()

    def reset(self) -> None:
        """Forget every track (a stream that starts again); identities are never reused."""
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 3, 4))    # per-quantity covariance blocks (kalman.py)
        self.ids = np.zeros(0, np.int64)       # -1 while tentative
        self.classes = np.zeros(0, np.int64)
        self.scores = np.zeros(0, np.float32)
        self.hits = np.zeros(0, np.int64)
        self.state = np.zeros(0, np.int64)
        self.seen = np.zeros(0)                # time of the last match
        self.last_z = np.zeros((0, 4))         # the last observation (xyah) and the filter right after it
        self.last_mean = np.zeros((0, 8))
        self.last_cov = np.zeros((0, 3, 4))
        self.heading = np.zeros((0, 2))        # smoothed observed motion of the centre (px per nominal frame)
        self.emb = np.zeros((0, 0), np.float32)  # appearance, when frames and the cue are on
        self.t: float | None = None
        self.frame_dt = kalman.FRAME_S
        self.next_id = getattr(self, "next_id", 1)
        self.confirmed_total = getattr(self, "confirmed_total", 0)
        if self.motion is not None:
            self.motion.reset()

    def __len__(self) -> int:
        return len(self.ids)

    def _keep(self, mask: np.ndarray) -> None:
        for name in _PER_TRACK:
            value = getattr(self, name)
            if len(value) == len(mask):
                setattr(self, name, value[mask])

    def _match(self, boxes: np.ndarray, tracks: np.ndarray, det_idx: np.ndarray, det: Detections,
               threshold: float, fuse: bool, cues: bool = False, grow: float = 0.0,
               det_emb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Match track indices to detection indices: same class and IoU >= threshold (the gate); among
        those, the assignment maximises IoU, weighted by detection score when ``fuse``, plus the direction
        and appearance cues when ``cues``. boxes: (T, 4) every track's predicted box; grow: boxes grown
        by this share of their size per side before the IoU (lost-track recovery)."""
        if len(tracks) == 0 or len(det_idx) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        a, b = boxes[tracks], det.boxes[det_idx].astype(np.float64)
        if grow:
            a, b = expand(a, grow), expand(b, grow)
        r, c, iou = overlaps(a, b)
        tr, de = tracks[r], det_idx[c]
        g = self.groups
        same = (self.classes[tr] == det.classes[de]) if g is None else (g[self.classes[tr]] == g[det.classes[de]])
        ok = (iou >= threshold) & same
        r, c, iou, tr, de = r[ok], c[ok], iou[ok], tr[ok], de[ok]
        sim = iou * det.scores[de] if fuse else iou
        if cues and self.s.direction_weight > 0 and len(tr):
            centres = (det.boxes[de, 0:2] + det.boxes[de, 2:4]) / 2
            heading = self.heading[tr]
            norm = np.hypot(heading[:, 0], heading[:, 1])[:, None]
            unit = np.where(norm > 0.5, heading / np.maximum(norm, 1e-6), 0.0)  # still objects: no heading
            sim = sim + self.s.direction_weight * direction_consistency(unit, self.last_z[tr, 0:2], centres) \
                * det.scores[de]
        if cues and (self.s.shape_weight > 0 or self.s.recency_weight > 0) and len(tr):
            # BoostTrack's track confidence: 0.9 per (30 fps) frame since the track was last seen
            missed = np.maximum(float(self.t or 0.0) - self.seen[tr] - self.frame_dt, 0.0) / kalman.FRAME_S
            both = np.clip(det.scores[de], 0.0, 1.0) * 0.9 ** missed  # confidences (MOT15's ACF scores run past 1)
            sim = sim + self.s.recency_weight * both * iou  # a track seen last frame before one lost a while
            if self.s.shape_weight > 0:  # alike sizes, by both confidences
                sim = sim + self.s.shape_weight * both * shape_similarity(boxes[tr], det.boxes[de].astype(np.float64))
        if cues and self.s.motion_weight > 0 and len(tr):  # the detections the track's motion explains best
            d2 = kalman.mahalanobis(self.mean[tr], self.cov[tr], kalman.xyxy_to_xyah(det.boxes[de]),
                                    self.s.measurement_noise)
            sim = sim + self.s.motion_weight * likelihood_share(r, d2, kalman.CHI2_4_99)
        if cues and det_emb is not None and len(tr) and self.emb.shape[1]:
            w = self.s.appearance_weight
            sim = (1 - w) * sim + w * (self.emb[tr] * det_emb[de]).sum(axis=1)
        mr, mc = assign(r, c, np.clip(sim, 1e-6, None), len(tracks), len(det_idx))
        return tracks[mr], det_idx[mc]

    def _apply(self, tracks: np.ndarray, dets: np.ndarray, det: Detections, t: float,
               det_emb: np.ndarray | None) -> None:
        if len(tracks) == 0:
            return
        z = kalman.xyxy_to_xyah(det.boxes[dets])
        gap = t - self.seen[tracks]
        self.mean[tracks], self.cov[tracks] = kalman.update(self.mean[tracks], self.cov[tracks], z,
                                                            self.s.measurement_noise)
        if self.s.reupdate:  # found again after a gap: re-run the filter along the straight path
            for k in (gap > 1.5 * self.frame_dt).nonzero()[0]:
                self._reupdate(int(tracks[k]), z[k], float(gap[k]))
        steps = np.maximum(gap / kalman.FRAME_S, 1e-6)[:, None]
        observed = (z[:, 0:2] - self.last_z[tracks, 0:2]) / steps
        fresh = (self.hits[tracks] == 1)[:, None]  # the second observation sets the heading outright
        self.heading[tracks] = np.where(fresh, observed, 0.7 * self.heading[tracks] + 0.3 * observed)
        self.last_z[tracks] = z
        self.last_mean[tracks], self.last_cov[tracks] = self.mean[tracks], self.cov[tracks]
        if det_emb is not None and self.emb.shape[1]:
            e = 0.9 * self.emb[tracks] + 0.1 * det_emb[dets]
            self.emb[tracks] = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-6)
        self.scores[tracks] = det.scores[dets]
        self.hits[tracks] += 1
        self.seen[tracks] = t
        self.state[tracks[self.state[tracks] == LOST]] = TRACKED
        grown = tracks[(self.state[tracks] == TENTATIVE) & (self.hits[tracks] >= self.s.min_hits)]
        if len(grown):  # confirmation: the only place an id is given
            self.ids[grown] = np.arange(self.next_id, self.next_id + len(grown))
            self.next_id += len(grown)
            self.state[grown] = TRACKED
            self.confirmed_total += len(grown)

    def _boost(self, det: Detections, boxes: np.ndarray) -> tuple[Detections, np.ndarray]:
        """BoostTrack's detection boosts, for association only (a track's reported score stays the detector's):
        boxes (T, 4) every track's predicted box -> the detections with boosted scores, and (N,) which weak ones
        were taken as strong because no track's motion explains them (these may start a track)."""
        s = self.s
        score = det.scores.astype(np.float64)
        g = self.groups
        if s.boost_overlap > 0:  # likely objects: a detection on a track's predicted box
            r, c, iou = overlaps(boxes, det.boxes.astype(np.float64))
            ct, cd = self.classes[r], det.classes[c]
            same = (ct == cd) if g is None else (g[ct] == g[cd])
            best = np.zeros(len(det))
            np.maximum.at(best, c[same], iou[same])
            score = np.maximum(score, s.boost_overlap * best)
        promoted = np.zeros(len(det), bool)
        weak = ((score >= s.low_score) & (score < s.high_score)).nonzero()[0]
        if s.boost_unexplained and len(weak):  # unlikely objects: weak, far from every track's motion
            d2 = kalman.mahalanobis(self.mean[:, None], self.cov[:, None], kalman.xyxy_to_xyah(det.boxes[weak])[None],
                                    s.measurement_noise)
            ct, cd = self.classes[:, None], det.classes[weak][None]
            d2 = np.where((ct == cd) if g is None else (g[ct] == g[cd]), d2, np.inf)
            cand = weak[d2.min(axis=0) > kalman.CHI2_4_99]
            cand = cand[strongest_apart(det.boxes[cand].astype(np.float64), score[cand], 0.3)]
            promoted[cand] = True
            score[cand] = s.high_score
        return Detections(det.boxes, score.astype(np.float32), det.classes), promoted

    def _match_by_depth(self, boxes: np.ndarray, tracks: np.ndarray, det_idx: np.ndarray, det: Detections,
                        det_emb: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """SparseTrack's depth cascade (first association): ``depth_levels`` bands of pseudo-depth (a box's
        bottom edge: lower = nearer), matched nearest first; what a band leaves unmatched joins the next."""
        s = self.s
        if len(tracks) == 0 or len(det_idx) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        t_bottom, d_bottom = boxes[tracks, 3], det.boxes[det_idx, 3].astype(np.float64)
        lo, hi = min(t_bottom.min(), d_bottom.min()), max(t_bottom.max(), d_bottom.max())
        edges = np.linspace(hi, lo, s.depth_levels + 1)[1:-1]  # band borders, nearest band first
        t_band = (t_bottom[:, None] < edges[None]).sum(axis=1)
        d_band = (d_bottom[:, None] < edges[None]).sum(axis=1)
        out_t, out_d, carry_t, carry_d = [], [], tracks[:0], det_idx[:0]
        for band in range(s.depth_levels):
            tr = np.concatenate([carry_t, tracks[t_band == band]])
            de = np.concatenate([carry_d, det_idx[d_band == band]])
            mt, md = self._match(boxes, tr, de, det, s.match_iou, s.fuse_score, cues=True, det_emb=det_emb)
            out_t.append(mt)
            out_d.append(md)
            carry_t, carry_d = np.setdiff1d(tr, mt), np.setdiff1d(de, md)
        return np.concatenate(out_t), np.concatenate(out_d)

    def _match_motion(self, tracks: np.ndarray, det_idx: np.ndarray, det: Detections) -> tuple[np.ndarray, np.ndarray]:
        """recover_motion: lost tracks vs detections by the distance of the detection's centre from the
        predicted one, in the track's box heights, gated at recover_motion; like heights (within 1.5x), same
        class, and not behind the track's observed heading."""
        if len(tracks) == 0 or len(det_idx) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        centre = (det.boxes[det_idx, 0:2] + det.boxes[det_idx, 2:4]) / 2
        dh = (det.boxes[det_idx, 3] - det.boxes[det_idx, 1]).astype(np.float64)
        th = self.mean[tracks, 3]
        dist = np.hypot(*(centre[None] - self.mean[tracks, None, 0:2]).transpose(2, 0, 1)) / th[:, None]
        ratio = dh[None] / th[:, None]
        g = self.groups
        ct, cd = self.classes[tracks][:, None], det.classes[det_idx][None]
        same = (ct == cd) if g is None else (g[ct] == g[cd])
        ok = (dist <= self.s.recover_motion) & (ratio >= 1 / 1.5) & (ratio <= 1.5) & same
        r, c = ok.nonzero()
        if len(r) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        heading = self.heading[tracks[r]]
        norm = np.hypot(heading[:, 0], heading[:, 1])[:, None]
        unit = np.where(norm > 0.5, heading / np.maximum(norm, 1e-6), 0.0)
        ahead = direction_consistency(unit, self.last_z[tracks[r], 0:2], centre[c]) >= 0
        r, c = r[ahead], c[ahead]
        sim = 1.0 - dist[r, c] / (self.s.recover_motion + 1e-9)
        mr, mc = assign(r, c, np.clip(sim, 1e-6, None), len(tracks), len(det_idx))
        return tracks[mr], det_idx[mc]

    def _behind(self, boxes: np.ndarray, matched: np.ndarray) -> np.ndarray:
        """(T,) lost tracks whose predicted box (boxes: (T, 4)) is at least half inside the box of a track
        matched this frame that stands in front of it (its bottom edge lower in the image)."""
        out = np.zeros(len(self), bool)
        lost = (self.state == LOST).nonzero()[0]
        front = (matched & (self.state == TRACKED)).nonzero()[0]
        if len(lost) == 0 or len(front) == 0:
            return out
        share, by = covered(boxes[lost], boxes[front])
        ok = by >= 0
        out[lost[ok]] = (share[ok] >= 0.5) & (boxes[front[by[ok]], 3] >= boxes[lost[ok], 3])
        return out

    def _reupdate(self, i: int, z: np.ndarray, gap: float) -> None:
        """OC-SORT's ORU for track i: from the filter as it was at the last observation, predict and
        correct frame by frame on virtual observations interpolated to the new one ``z`` (4,)."""
        n = max(2, min(int(round(gap / self.frame_dt)), 300))
        mean, cov = self.last_mean[i:i + 1], self.last_cov[i:i + 1]
        z0 = self.last_z[i]
        for k in range(1, n + 1):
            mean, cov = kalman.predict(mean, cov, gap / n)
            mean, cov = kalman.update(mean, cov, (z0 + (z - z0) * (k / n))[None], self.s.measurement_noise)
        self.mean[i], self.cov[i] = mean[0], cov[0]

    def update(self, det: Detections, t: float, frame: np.ndarray | None = None) -> Tracks:
        """detections of one frame at time ``t`` (seconds, increasing), the frame (H, W, 3) BGR uint8 when
        there is one (camera motion, appearance) -> the confirmed tracks it updated."""
        s = self.s
        dt = 0.0 if self.t is None else max(0.0, t - self.t)
        if dt > 0:
            self.frame_dt = dt
        self.t = t
        if frame is not None and self.motion is not None:
            warp = self.motion.estimate(frame, det.boxes)
            if warp is not None and len(self):
                self._warp(warp)
        det_emb = None
        if frame is not None and self.appearance is not None:
            det_emb = self.appearance.embed(frame, det.boxes)
            if self.emb.shape[1] != det_emb.shape[1]:
                self.emb = np.zeros((len(self), det_emb.shape[1]), np.float32)
        if s.freeze_lost_size and len(self):  # a hidden object keeps its size (ByteTrack, BoT-SORT)
            self.mean[self.state != TRACKED, 6:8] = 0.0
        self.mean, self.cov = kalman.predict(self.mean, self.cov, dt)
        boxes = kalman.xyah_to_xyxy(self.mean) if len(self) else np.zeros((0, 4))
        scores = det.scores
        found, promoted = det, np.zeros(len(det), bool)  # what association sees: boosted scores, when on
        if (s.boost_overlap > 0 or s.boost_unexplained) and len(self) and len(det):
            found, promoted = self._boost(det, boxes)
        high = (found.scores >= s.high_score).nonzero()[0]
        low = ((found.scores >= s.low_score) & (found.scores < s.high_score)).nonzero()[0]
        before = self.state.copy()
        matched = np.zeros(len(self), bool)
        used = np.zeros(len(det), bool)
        # Every stage matches predicted boxes; the Kalman corrections are applied once, at the end.
        # 1. confirmed (tracked or lost) tracks vs high-score detections
        first = (before != TENTATIVE).nonzero()[0]
        if s.depth_levels > 1:
            t1, d1 = self._match_by_depth(boxes, first, high, found, det_emb)
        else:
            t1, d1 = self._match(boxes, first, high, found, s.match_iou, s.fuse_score, cues=True, det_emb=det_emb)
        matched[t1], used[d1] = True, True
        # 2. tracks that were tracked last frame and are still unmatched vs low-score detections
        second = (before == TRACKED) | ((before == LOST) & s.low_revives_lost)
        t2, d2 = self._match(boxes, (second & ~matched).nonzero()[0], low, found, s.low_iou, False)
        matched[t2], used[d2] = True, True
        # 3. lost tracks still unmatched: grown boxes, for objects that moved further than predicted
        t4 = d4 = np.zeros(0, np.int64)
        if s.recover_buffer > 0:
            t4, d4 = self._match(boxes, ((before == LOST) & ~matched).nonzero()[0], high[~used[high]], found,
                                 s.match_iou, s.fuse_score, grow=s.recover_buffer)
            matched[t4], used[d4] = True, True
        # 3b. OC-SORT's observation-centric recovery: tracks still unmatched, by the box where they were
        # last seen (an object that stopped while hidden is found where it stopped, not where it was heading)
        t5 = d5 = np.zeros(0, np.int64)
        if s.recover_last:
            last_boxes = kalman.xyah_to_xyxy(self.last_z) if len(self) else np.zeros((0, 4))
            t5, d5 = self._match(last_boxes, ((before != TENTATIVE) & ~matched).nonzero()[0], high[~used[high]],
                                 found,
                                 s.match_iou, s.fuse_score)
            matched[t5], used[d5] = True, True
            t4, d4 = np.concatenate([t4, t5]), np.concatenate([d4, d5])
        # 3c. lost tracks still unmatched, by motion: a detection near where the filter puts them, of a like
        # size, not behind their heading (an object that moved further than the IoU gate allows while hidden)
        if s.recover_motion > 0:
            t6, d6 = self._match_motion(((before == LOST) & ~matched).nonzero()[0], high[~used[high]], found)
            matched[t6], used[d6] = True, True
            t4, d4 = np.concatenate([t4, t6]), np.concatenate([d4, d6])
        # 4. tentative tracks vs the high-score detections left
        t3, d3 = self._match(boxes, (before == TENTATIVE).nonzero()[0], high[~used[high]], found,
                             s.tentative_iou, s.fuse_score)
        matched[t3], used[d3] = True, True
        self.state[(before == TRACKED) & ~matched] = LOST
        all_t, all_d = np.concatenate([t1, t2, t4, t3]), np.concatenate([d1, d2, d4, d3])
        self._apply(all_t, all_d, det, t, det_emb)
        # tentative tracks that missed die; lost tracks past the buffer end (a longer one behind another object)
        past = (self.state == LOST) & (t - self.seen > s.lost_s)
        if s.occluded_lost_s > s.lost_s and past.any():
            past &= ~(self._behind(boxes, matched) & (t - self.seen <= s.occluded_lost_s))
        dead = ((before == TENTATIVE) & ~matched) | past
        out_idx = (matched & (self.state == TRACKED)).nonzero()[0]
        if s.report == "detection":  # the box the detector saw this frame, with the track's identity
            box_of = np.zeros((len(self), 4))
            box_of[all_t] = det.boxes[all_d]
            out_boxes = box_of[out_idx]
        else:
            out_boxes = kalman.xyah_to_xyxy(self.mean[out_idx]) if len(out_idx) else np.zeros((0, 4))
        out_ids, out_cls, out_sc = self.ids[out_idx], self.classes[out_idx], self.scores[out_idx]
        if dead.any():
            self._keep(~dead)
        # 5. births from the high-score detections nobody took
        born = high[~used[high] & ((scores[high] >= s.new_track_score) | promoted[high])]
        if len(born):
            z = kalman.xyxy_to_xyah(det.boxes[born])
            mean, cov = kalman.initiate(z)
            confirmed_now = s.min_hits <= 1
            ids = np.arange(self.next_id, self.next_id + len(born)) if confirmed_now else np.full(len(born), -1)
            if confirmed_now:
                self.next_id += len(born)
                self.confirmed_total += len(born)
                out_boxes = np.concatenate([out_boxes, det.boxes[born]])
                out_ids = np.concatenate([out_ids, ids])
                out_cls = np.concatenate([out_cls, det.classes[born]])
                out_sc = np.concatenate([out_sc, scores[born]])
            n = len(born)
            self.mean = np.concatenate([self.mean, mean])
            self.cov = np.concatenate([self.cov, cov])
            self.ids = np.concatenate([self.ids, ids.astype(np.int64)])
            self.classes = np.concatenate([self.classes, det.classes[born]])
            self.scores = np.concatenate([self.scores, scores[born]])
            self.hits = np.concatenate([self.hits, np.ones(n, np.int64)])
            self.state = np.concatenate([self.state, np.full(n, TRACKED if confirmed_now else TENTATIVE)])
            self.seen = np.concatenate([self.seen, np.full(n, t)])
            self.last_z = np.concatenate([self.last_z, z])
            self.last_mean = np.concatenate([self.last_mean, mean])
            self.last_cov = np.concatenate([self.last_cov, cov])
            self.heading = np.concatenate([self.heading, np.zeros((n, 2))])
            if self.emb.shape[1]:  # unknown looks (a frame without image) start at zero similarity
                self.emb = np.concatenate([self.emb, det_emb[born] if det_emb is not None
                                           else np.zeros((n, self.emb.shape[1]), np.float32)])
        return Tracks(out_boxes, out_ids, out_cls, out_sc, missed=int(((before == TRACKED) & ~matched).sum()))

    def _warp(self, warp: np.ndarray) -> None:
        """Move every track by the camera's motion: warp (2, 3) maps the last frame's pixels to this one's
        (positions, and the velocities and heading by its linear part; heights by its scale)."""
        lin, shift = warp[:, :2], warp[:, 2]
        scale = float(np.sqrt(abs(np.linalg.det(lin))))
        for mean in (self.mean, self.last_mean):
            mean[:, 0:2] = mean[:, 0:2] @ lin.T + shift
            mean[:, 4:6] = mean[:, 4:6] @ lin.T
            mean[:, 3] *= scale
            mean[:, 7] *= scale
        self.last_z[:, 0:2] = self.last_z[:, 0:2] @ lin.T + shift
        self.last_z[:, 3] *= scale
        self.heading = self.heading @ lin.T

    def counts(self) -> dict[str, int]:
        return {"tentative": int((self.state == TENTATIVE).sum()), "tracked": int((self.state == TRACKED).sum()),
                "lost": int((self.state == LOST).sum()), "confirmed_total": self.confirmed_total}
