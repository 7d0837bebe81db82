"""`edge-app track` over a recording: the runtime's source, detector, tracker and counting on every frame
of the shipped people clip (none dropped), with sane counts; bad lines and zones are named."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "edge_app" / "demo"
HALL = "hall:300,60,560,60,560,432,300,432"   # people.toml's zone: it reaches the frame's bottom edge


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "edge_app", "track", *map(str, args)], capture_output=True,
                          text=True, timeout=600, cwd=ROOT)


@pytest.fixture(scope="module")
def people_run(tmp_path_factory):
    if not (DEMO / "people.mp4").is_file() or not (DEMO / "person.onnx").is_file():
        pytest.skip("the people demo (edge_app/demo/people.mp4, person.onnx) is not here")
    pytest.importorskip("gi", reason="the runtime's file source is GStreamer")
    out = tmp_path_factory.mktemp("track") / "tracks.txt"
    r = _cli(DEMO / "people.mp4", "--model", DEMO / "person.onnx", "--zone", HALL, "--line", "middle:0.5,0,0.5,1",
             "--out", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1]), out


def test_every_frame_of_the_clip_is_tracked(people_run):
    r, out = people_run
    assert r["frames"] == 300 and r["dropped"] == 0 and r["size"] == [768, 432]
    from edge_app.datasets.motchallenge import read_mot
    rows = read_mot(out)
    assert len(rows.frames) > 50 and rows.frames.max() <= 300


def test_the_clip_gives_sane_counts(people_run):
    # one person walks into the hall and stands there: one entry, never the flicker of "0 inside, 6 entered"
    r, _out = people_run
    hall = r["zones"]["hall"]
    assert sum(hall["entries"].values()) == 1 and sum(hall["exits"].values()) <= 1
    assert r["tracks"] <= 2   # one person, its identity kept (at most one split)


@pytest.mark.parametrize("args, message", [
    (["--line", "door:0,0,900,10"], "--line door.points: [[900.0, 10.0]] outside the 768x432 frame"),
    (["--zone", "z:0,0,10,10"], "--zone z.points: a zone needs at least 3 points, got 2"),
])
def test_bad_shapes_are_named(tmp_path, args, message):
    if not (DEMO / "people.mp4").is_file():
        pytest.skip("no demo clip")
    r = _cli(DEMO / "people.mp4", "--model", DEMO / "person.onnx", *args, "--out", tmp_path / "t.txt", "--no-progress")
    assert r.returncode == 2 and message in r.stderr, r.stderr


@pytest.mark.parametrize("args, message", [
    (["--match-iou", "5"], "--match-iou = 5.0: expected a value <= 1"),
    (["--lost-s", "-1"], "--lost-s = -1.0: expected a value >= 0"),
    (["--min-hits", "0"], "--min-hits = 0: expected a value >= 1"),
    (["--shape-weight", "3"], "--shape-weight = 3.0: expected a value <= 1"),
    (["--boost-unexplained", "maybe"], "--boost-unexplained: expected true or false, got 'maybe'"),
])
def test_bad_tracker_settings_are_named(tmp_path, args, message):
    det = tmp_path / "det.txt"
    det.write_text("1,-1,10,10,20,40,0.9,-1,-1,-1\n")
    r = _cli("--detections", det, "--out", tmp_path / "t.txt", *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not (tmp_path / "t.txt").exists()   # nothing written


def test_a_video_needs_a_model(tmp_path):
    r = _cli(DEMO / "people.mp4", "--out", tmp_path / "t.txt")
    assert r.returncode == 2 and "--model ARTIFACT" in r.stderr


def test_a_mot_sequence_folder_is_tracked_frame_by_frame(tmp_path, shared_data):
    d = shared_data / "mot" / "MOT17-05-FRCNN-mini"
    if not d.is_dir() or not (DEMO / "person.onnx").is_file():
        pytest.skip("no MOT17-05 mini sequence or person detector")
    r = _cli(d, "--model", DEMO / "person.onnx", "--line", "v:0.5,0,0.5,1", "--out", tmp_path / "t.txt", "--no-progress")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["frames"] == len(list((d / "img1").glob("*.jpg"))) and out["dropped"] == 0
    assert out["size"] == [640, 480] and out["frame_rate"] == 14.0
