"""`edge-app evaluate-counts`: the runtime's counting rule on tracks against the same rule on the ground
truth's identities, on constructed sequences whose right answers are known by construction (who crosses
which way, which identity is split); bad input is refused naming the argument or the file and line."""
import json
import subprocess
import sys

import numpy as np
import pytest

from calibration.counts import main

W, H, FPS = 640, 480, 30


def _rows(oid, xs, frames, y=380.0, w=40.0, h=100.0):
    """MOT rows (frame, id, x, y, w, h): an object whose feet (bottom centre) move along xs at height y."""
    return [(f, oid, x - w / 2, y - h, w, h) for f, x in zip(frames, xs)]


def _scene(tmp_path):
    """Three people: 1 and 2 walk left to right across x = 320, 3 right to left, 60 frames each."""
    fr = list(range(1, 61))
    right = list(np.linspace(100, 540, 60))
    gt = _rows(1, right, fr) + _rows(2, right, fr, y=300) + _rows(3, right[::-1], fr, y=440)
    # the tracker: 1 and 3 whole; 2 split at the line (id 12 before, 13 after a 3-frame gap) -- neither
    # part is seen on both sides: the crossing is lost unless the counting memory lets 13 continue 12
    # (on by default); the split shows in the id ratio either way
    tracks = (_rows(11, right, fr) + _rows(12, right[:28], fr[:28], y=300) + _rows(13, right[31:], fr[31:], y=300)
              + _rows(14, right[::-1], fr, y=440))
    seq = tmp_path / "seq"
    (seq / "gt").mkdir(parents=True)
    (seq / "seqinfo.ini").write_text(f"[Sequence]\nname=seq\nframeRate={FPS}\nseqLength=60\nimWidth={W}\nimHeight={H}\n")
    (seq / "gt" / "gt.txt").write_text("".join(f"{f},{i},{x:.2f},{y:.2f},{w},{h},1,1,1\n" for f, i, x, y, w, h in gt))
    (tmp_path / "tracks.txt").write_text("".join(f"{f},{i},{x:.2f},{y:.2f},{w},{h},0.9,-1,-1,-1\n"
                                                for f, i, x, y, w, h in tracks))
    return seq / "gt" / "gt.txt", tmp_path / "tracks.txt"


def _main(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def test_counts_on_tracks_against_the_truth(tmp_path, capsys):
    gt, tracks = _scene(tmp_path)
    code, r, err = _main(capsys, "--gt", gt, "--tracks", tracks, "--line", "door:320,0,320,480",
                         "--zone", "right:330,0,640,0,640,480,330,480")
    assert code == 0, err
    door = r["lines"]["door"]   # drawn downwards: "in" = moving right
    assert (door["truth_in"], door["truth_out"]) == (2, 1)
    assert (door["in"], door["out"]) == (2, 1) and door["error"] == 0    # 13 took over 12's side
    assert r["line_count_error"] == 0
    assert (r["track_ids"], r["true_ids"]) == (4, 3) and r["id_ratio"] == pytest.approx(4 / 3)
    _c, bare, _e = _main(capsys, "--gt", gt, "--tracks", tracks, "--line", "door:320,0,320,480", "--memory-s", "0")
    assert (bare["lines"]["door"]["in"], bare["lines"]["door"]["error"]) == (1, 1)   # without: lost
    assert bare["line_count_error"] == pytest.approx(1 / 3)
    zone = r["zones"]["right"]  # a zone reaching the frame's right edge
    assert zone["truth_entries"] == 3 and zone["entries"] == 3   # 13 appears inside: an entry, as live


def test_normalised_points_count_the_same(tmp_path, capsys):
    gt, tracks = _scene(tmp_path)
    _c, pixels, _e = _main(capsys, "--gt", gt, "--tracks", tracks, "--line", "door:320,0,320,480")
    _c, unit, _e = _main(capsys, "--gt", gt, "--tracks", tracks, "--line", "door:0.5,0,0.5,1")
    assert unit["lines"] == pixels["lines"]


def test_the_command_line(tmp_path):
    gt, tracks = _scene(tmp_path)
    r = subprocess.run([sys.executable, "-m", "edge_app", "evaluate-counts", "--gt", str(gt), "--tracks", str(tracks),
                        "--line", "door:320,0,320,480"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["lines"]["door"]["truth_in"] == 2


@pytest.mark.parametrize("change, args, message", [
    (None, ["--line", "door:320,0,320,900"], "--line door.points: [[320.0, 900.0]] outside the 640x480 frame"),
    (None, ["--zone", "z:0,0,10,10"], "--zone z.points: a zone needs at least 3 points, got 2"),
    (None, ["--line", "door"], "--line 'door': expected NAME:x1,y1,x2,y2"),
    (None, ["--line", "door:1,2,x,4"], "--line 'door:1,2,x,4': non-numeric coordinate"),
    (None, ["--line", "door:320,0,320,480", "--memory-s", "-5"], "--memory-s = -5.0: expected a value >= 0"),
    (None, ["--line", "door:320,0,320,480", "--memory-radius", "11"], "--memory-radius = 11.0: expected a value <= 10"),
    (None, ["--line", "door:320,0,320,480", "--max-gap-s", "0"], "--max-gap-s 0.0: expected a number of seconds"),
    ("reused", ["--line", "door:320,0,320,480"], "tracks.txt:178: id 11 comes back at frame 400 after 339 frames unseen"),
    ("twice", ["--line", "door:320,0,320,480"], "tracks.txt:2: id 11 twice in frame 1"),
    ("no-ids", ["--line", "door:320,0,320,480"], "gt.txt:1: no identities"),
    ("no-size", ["--line", "door:320,0,320,480"], "the frame size"),
])
def test_bad_input_is_named(tmp_path, capsys, change, args, message):
    gt, tracks = _scene(tmp_path)
    if change == "reused":   # id 11 again 339 frames later: another object under an old id
        with tracks.open("a") as f:
            f.write("400,11,100,100,40,100,0.9,-1,-1,-1\n")
    elif change == "twice":
        text = tracks.read_text().splitlines()
        tracks.write_text("\n".join([text[0], text[0].replace(",100.00,", ",150.00,", 1)] + text[1:]) + "\n")
    elif change == "no-ids":  # a detections file given as ground truth
        gt.write_text("".join(",".join(["1", "-1"] + line.split(",")[2:]) + "\n" for line in gt.read_text().splitlines()))
    elif change == "no-size":
        (gt.parent.parent / "seqinfo.ini").unlink()
    code, _r, err = _main(capsys, "--gt", gt, "--tracks", tracks, *args)
    assert code == 2 and message in err, err


def test_the_counting_memory_and_the_explanation(tmp_path, capsys):
    # id 2 split at the line (12, then 13 three frames later past it): the memory lets 13 continue 12
    gt, tracks = _scene(tmp_path)
    args = ["--gt", gt, "--tracks", tracks, "--line", "door:320,0,320,480", "--explain"]
    _c, off, err = _main(capsys, *args, "--memory-s", "0")
    assert off is not None, err
    assert off["lines"]["door"]["in"] == 1 and off["lines"]["door"]["error"] == 1
    assert off["explain"]["misses"]["fragmented_visible"] == 1 and off["explain"]["error"] == 1
    _c, on, err = _main(capsys, *args, "--memory-s", "2", "--memory-radius", "1")
    assert on is not None, err
    assert on["lines"]["door"]["in"] == 2 and on["lines"]["door"]["error"] == 0
    assert on["explain"]["matched"] == on["explain"]["true_crossings"] == 3
    assert (on["track_ids"], on["true_ids"]) == (4, 3)   # the tracker's ids are untouched: counting only
    with pytest.raises(SystemExit):
        main([str(a) for a in args] + ["--count-at-end", "maybe"])
    assert "argument --count-at-end: expected true or false, got 'maybe'" in capsys.readouterr().err
