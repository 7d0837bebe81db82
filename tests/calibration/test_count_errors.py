"""The count-error decomposition on a constructed scene where each person's fate is known by construction:
one crossing counted right, one crossed while hidden between two ids, one never tracked, one tracked on
one side only, one lost within the margin, one id jumping between two people, one person counted twice
by two ids, one track on nobody. Each is put down to its cause; the net error equals evaluate-counts'."""
from calibration.count_errors import decompose_files
from calibration.counts import evaluate_counts
from edge_app.config.schema import AnalyticsConfig, LineConfig

W, H, FPS = 1000, 800, 30
BARE = AnalyticsConfig(memory_s=0.0, count_at_end=False)   # the rule without repairs: every split shows
LINE = LineConfig(name="door", points=((500.0, 0.0), (500.0, 800.0)), margin=0.2)  # downwards: "in" = moving right


def _walk(x0, vx, frames):
    return {f: x0 + vx * (f - frames[0]) for f in frames}


def _rows(oid, xs, y, vis=None, h=100.0, w=40.0):
    """(frame, id, x, y, w, h, vis) of an object whose feet are at (xs[frame], y)."""
    return [(f, oid, x - w / 2, y - h, w, h, 1.0 if vis is None else vis(f)) for f, x in xs.items()]


def _scene(tmp_path):
    gt, tr = [], []
    a = _walk(300, 5, range(1, 81))            # A: crosses at frame ~41, tracked whole by 11
    gt += _rows(1, a, 100)
    tr += _rows(11, a, 100)
    b = _walk(300, 5, range(1, 81))            # B: hidden over frames 30-55 while it crosses: ids 12, 13
    gt += _rows(2, b, 200, vis=lambda f: 0.0 if 30 <= f <= 55 else 1.0)
    tr += _rows(12, {f: x for f, x in b.items() if f < 30}, 200) + _rows(13, {f: x for f, x in b.items() if f > 55}, 200)
    c = _walk(300, 5, range(1, 81))            # C: never tracked
    gt += _rows(3, c, 300)
    d = _walk(300, 5, range(1, 81))            # D: tracked until frame 35, then never again
    gt += _rows(4, d, 400)
    tr += _rows(14, {f: x for f, x in d.items() if f <= 35}, 400)
    e = _walk(300, 5, range(1, 81))            # E: its track lost within the margin (x 515 at frame 44)
    gt += _rows(5, e, 500)
    tr += _rows(15, {f: x for f, x in e.items() if f <= 44}, 500) + _rows(16, {f: x for f, x in e.items() if f >= 50}, 500)
    # F stands left of the line, G right of it; track 17 covers F, then jumps to G: it "crosses"
    f_, g_ = {f: 420.0 for f in range(1, 81)}, {f: 580.0 for f in range(1, 81)}
    gt += _rows(6, f_, 560) + _rows(7, g_, 560)
    tr += _rows(17, {f: 420.0 for f in range(1, 31)}, 560) + _rows(17, {f: 580.0 for f in range(31, 81)}, 560)
    # K goes right, back left, right again: 18 counts its first "in"; 19 (after a gap) its "out", and
    # its second "in", which the truth counts once per identity and direction: a double count
    k = {f: (300 + 10 * f if f <= 40 else 700 - 10 * (f - 40) if f <= 80 else 300 + 10 * (f - 80)) for f in range(1, 121)}
    gt += _rows(8, k, 700)
    tr += _rows(18, {f: x for f, x in k.items() if f <= 35}, 700) + _rows(19, {f: x for f, x in k.items() if f >= 40}, 700)
    # a track on nobody, crossing
    tr += _rows(20, _walk(300, 8, range(1, 61)), 790)
    seq = tmp_path / "seq"
    (seq / "gt").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text(f"[Sequence]\nname=seq\nframeRate={FPS}\nseqLength=120\nimWidth={W}\nimHeight={H}\n")
    (seq / "gt" / "gt.txt").write_text("".join(f"{f},{i},{x:.2f},{y:.2f},{w},{h},1,1,{v}\n"
                                               for f, i, x, y, w, h, v in sorted(gt)))
    (tmp_path / "tracks.txt").write_text("".join(f"{f},{i},{x:.2f},{y:.2f},{w},{h},0.9,-1,-1,-1\n"
                                                for f, i, x, y, w, h, _v in sorted(tr)))
    return seq / "gt" / "gt.txt", tmp_path / "tracks.txt"


def test_each_error_is_put_down_to_its_cause(tmp_path):
    gt, tracks = _scene(tmp_path)
    r = decompose_files(gt, tracks, [LINE], W, H, FPS, rule=BARE)
    assert r["true_crossings"] == 7                  # A, B, C, D, E in; K in and out
    assert r["matched"] == 3                         # A; K's first in (18) and its out (19)
    assert r["misses"] == {"never_tracked": 1, "hysteresis": 1, "fragmented_hidden": 1, "fragmented_visible": 0,
                           "one_side_only": 1, "same_track_not_counted": 0}
    assert r["extras"] == {"false_track": 1, "double_count": 1, "id_switch": 1}
    causes = {(e.get("true_id"), e["cause"]) for e in r["events"]}
    assert {(3, "never_tracked"), (2, "fragmented_hidden"), (4, "one_side_only"), (5, "hysteresis"),
            (7, "id_switch"), (8, "double_count"), (None, "false_track")} == causes
    # the net error is evaluate-counts': misses and extras of one direction cancel
    e = evaluate_counts(gt, tracks, [LINE], [], W, H, FPS, rule=BARE)
    # in: 6 true, 5 counted (A, K's first, and the three extras); out: K's, counted
    assert r["error"] == e["lines"]["door"]["error"] == 1
    # with the default repairs: the counting memory (2 box heights) lets 16 continue 15 (0.3 heights from
    # where 15 was lost) and 13 continue 12 (1.35 heights): E's and B's crossings count; D, lost clearly
    # before the line, stays a miss (count_at_end wants it past the line)
    m = decompose_files(gt, tracks, [LINE], W, H, FPS)
    assert m["matched"] == 5 and m["misses"]["hysteresis"] == m["misses"]["fragmented_hidden"] == 0
    assert m["misses"]["one_side_only"] == 1


def test_a_perfect_tracker_has_nothing_to_explain(tmp_path):
    gt, _tracks = _scene(tmp_path)
    rows = [line.split(",") for line in gt.read_text().splitlines()]
    perfect = tmp_path / "perfect.txt"
    perfect.write_text("".join(",".join(r[:6] + ["0.9", "-1", "-1", "-1"]) + "\n" for r in rows))
    r = decompose_files(gt, perfect, [LINE], W, H, FPS, rule=BARE)
    assert r["matched"] == r["true_crossings"] == 7 and r["error"] == 0
    assert not any(r["misses"].values()) and not any(r["extras"].values())
