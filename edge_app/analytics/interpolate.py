"""Offline only: fill the gaps of each track with boxes on the straight path between the last box before
and the first box after (``edge-app track --interpolate-s``). A recording can look ahead; a live stream
cannot (the box of a hidden object is known only once it is found again), so the runtime never does this.
"""
from __future__ import annotations

import numpy as np

from ..core.types import Tracks


def fill_gaps(frames: list[tuple[int, Tracks]], max_gap: int) -> list[tuple[int, Tracks]]:
    """frames: [(frame number, Tracks)] in order; every gap of at most ``max_gap`` frames inside a track
    (the same id before and after) gets one box per missing frame, linearly interpolated (score: the lower
    of the two ends). Returns the frames with those boxes added (ids sorted within each frame)."""
    if max_gap < 1 or not frames:
        return frames
    f_all = np.concatenate([np.full(len(tr.ids), f) for f, tr in frames]).astype(np.int64)
    if len(f_all) == 0:
        return frames
    ids = np.concatenate([tr.ids for _f, tr in frames]).astype(np.int64)
    boxes = np.concatenate([np.asarray(tr.boxes, np.float64).reshape(-1, 4) for _f, tr in frames])
    scores = np.concatenate([np.asarray(tr.scores, np.float32) for _f, tr in frames])
    classes = np.concatenate([np.asarray(tr.classes, np.int64) for _f, tr in frames])
    order = np.lexsort((f_all, ids))
    f_s, id_s = f_all[order], ids[order]
    step = np.diff(f_s)
    gaps = ((id_s[1:] == id_s[:-1]) & (step > 1) & (step <= max_gap + 1)).nonzero()[0]
    add_f, add_i, add_b, add_s, add_c = [], [], [], [], []
    for k in gaps:
        a, b = order[k], order[k + 1]
        n = int(step[k])
        w = (np.arange(1, n) / n)[:, None]
        add_f.append(f_s[k] + np.arange(1, n))
        add_i.append(np.full(n - 1, id_s[k]))
        add_b.append(boxes[a] + (boxes[b] - boxes[a]) * w)
        add_s.append(np.full(n - 1, min(scores[a], scores[b]), np.float32))
        add_c.append(np.full(n - 1, classes[a]))
    if not add_f:
        return frames
    f_all = np.concatenate([f_all, *add_f])
    ids = np.concatenate([ids, *add_i])
    boxes = np.concatenate([boxes, *add_b])
    scores = np.concatenate([scores, *add_s])
    classes = np.concatenate([classes, *add_c])
    order = np.lexsort((ids, f_all))
    f_all, ids, boxes, scores, classes = f_all[order], ids[order], boxes[order], scores[order], classes[order]
    starts = np.searchsorted(f_all, [f for f, _tr in frames])
    ends = np.searchsorted(f_all, [f for f, _tr in frames], side="right")
    return [(f, Tracks(boxes[a:b], ids[a:b], classes[a:b], scores[a:b], missed=tr.missed))
            for (f, tr), a, b in zip(frames, starts, ends)]
