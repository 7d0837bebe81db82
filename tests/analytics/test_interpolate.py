"""Offline gap filling (``edge-app track --interpolate-s``): every gap inside a track up to the limit gets
the straight-line boxes numpy's interp gives, none across ids or past the limit; the command writes them."""
import numpy as np

from edge_app.analytics.interpolate import fill_gaps
from edge_app.datasets.motchallenge import read_mot
from edge_app.cli.track import main
from edge_app.core.types import Tracks


def _frames(rows, last):
    """rows: {frame: [(id, x1)]} -> [(frame, Tracks)] for frames 1..last, boxes 40 x 100 at x1."""
    out = []
    for f in range(1, last + 1):
        objs = rows.get(f, [])
        boxes = np.array([[x, 10.0, x + 40, 110.0] for _i, x in objs], np.float32).reshape(-1, 4)
        out.append((f, Tracks(boxes, np.array([i for i, _x in objs], np.int64), np.zeros(len(objs), np.int64),
                              np.full(len(objs), 0.8, np.float32))))
    return out


def test_gaps_are_filled_on_the_straight_line():
    seen = {1: 100.0, 2: 104.0, 7: 130.0, 8: 133.0, 20: 200.0}     # id 1: gaps of 4 and 11 frames
    rows = {f: [(1, x)] for f, x in seen.items()}
    for f in range(1, 21):
        rows.setdefault(f, []).append((2, 500.0 + f))              # id 2 everywhere: untouched
    out = fill_gaps(_frames(rows, 20), max_gap=5)
    one = {f: float(tr.boxes[tr.ids == 1, 0][0]) for f, tr in out if (tr.ids == 1).any()}
    assert sorted(one) == [1, 2, 3, 4, 5, 6, 7, 8, 20]             # the 4-frame gap filled, the 11-frame one not
    expect = np.interp([3, 4, 5, 6], [2, 7], [104.0, 130.0])
    np.testing.assert_allclose([one[f] for f in (3, 4, 5, 6)], expect, rtol=1e-6)
    assert all((tr.ids == 2).sum() == 1 for _f, tr in out)
    assert all(list(tr.ids) == sorted(tr.ids) for _f, tr in out)
    assert fill_gaps(_frames(rows, 20), max_gap=0) is not None
    assert sum(len(tr.ids) for _f, tr in fill_gaps(_frames(rows, 20), max_gap=0)) == 25


def test_track_writes_the_filled_boxes(tmp_path, capsys):
    # a walker whose detections drop out for 10 frames: the tracker keeps its id across the gap
    det = tmp_path / "det.txt"
    det.write_text("".join(f"{f},-1,{100 + 3 * f},50,40,100,0.9\n" for f in range(1, 61) if not 20 <= f < 30))
    for flag, rows in (("0", 60 - 10 - 2), ("2", 60 - 2)):   # min_hits 3: the first two frames have no id
        out = tmp_path / f"t{flag}.txt"
        assert main(["--detections", str(det), "--out", str(out), "--frame-rate", "30", "--interpolate-s", flag,
                     "--no-progress"]) == 0
        got = read_mot(out)
        assert len(got.ids) == rows and len(np.unique(got.ids)) == 1
    filled = read_mot(tmp_path / "t2.txt")
    np.testing.assert_allclose(filled.boxes[filled.frames == 25, 0], [100 + 3 * 25], atol=1.0)
