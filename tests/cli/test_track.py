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


def _panning_sequence(root: Path) -> Path:
    """A MOTChallenge-layout sequence of a camera that stands, then pans fast (25 px/frame), over a person
    standing still in the world and missed every 4th frame: det/det.txt, img1/ JPEGs, seqinfo.ini."""
    cv2 = pytest.importorskip("cv2")
    import numpy as np
    rng = np.random.default_rng(1)
    world = cv2.GaussianBlur((rng.uniform(0, 255, (700, 3000)) > 200).astype(np.uint8) * 255, (5, 5), 0)
    (root / "img1").mkdir(parents=True)
    (root / "det").mkdir()
    rows = []
    for f in range(40):
        pan = 0 if f < 10 else 25 * (f - 10)
        frame = np.repeat(np.ascontiguousarray(world[100:580, pan:pan + 640])[:, :, None], 3, axis=2)
        cv2.imwrite(str(root / "img1" / f"{f + 1:06d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
        x = 300 - pan
        if -40 < x < 640 and f % 4 != 3:
            rows.append(f"{f + 1},-1,{x},200,40,100,0.9,-1,-1,-1")
    (root / "det" / "det.txt").write_text("\n".join(rows) + "\n")
    (root / "seqinfo.ini").write_text("[Sequence]\nname=pan\nimDir=img1\nframeRate=30\nseqLength=40\n"
                                      "imWidth=640\nimHeight=480\nimExt=.jpg\n")
    return root


def _ids(path: Path) -> set[int]:
    from edge_app.datasets.motchallenge import read_mot
    return set(read_mot(path).ids.tolist())


def test_detections_with_their_frames_compensate_a_panning_camera(tmp_path):
    # SORT's filter (measurement noise 1), as in tests/analytics: the pan is what breaks the identity
    seq = _panning_sequence(tmp_path / "pan")
    common = ["--detections", seq / "det" / "det.txt", "--interpolate-s", "0", "--measurement-noise", "1",
              "--lost-s", "1", "--no-progress"]
    r = _cli(*common, "--frames", seq / "img1", "--out", tmp_path / "with.txt")
    assert r.returncode == 0, r.stderr
    assert "without an image" not in r.stdout
    r = _cli(*common, "--out", tmp_path / "without.txt")
    assert r.returncode == 0, r.stderr
    assert len(_ids(tmp_path / "with.txt")) == 1 and len(_ids(tmp_path / "without.txt")) > 1


def test_a_missing_frame_is_tracked_without_its_image_and_counted(tmp_path):
    seq = _panning_sequence(tmp_path / "pan")
    (seq / "img1" / "000020.jpg").unlink()
    (seq / "img1" / "000021.jpg").write_bytes(b"not a jpeg")
    r = _cli("--detections", seq / "det" / "det.txt", "--frames", seq / "img1", "--out", tmp_path / "t.txt",
             "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "2 without an image" in r.stdout
    assert "000020.jpg: missing image, frame 20" in r.stderr and "000021.jpg: unreadable image, frame 21" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["--frames", "{tmp}"], "no 000001.jpg (expected the sequence's images"),
    (["--frames", "{tmp}/nowhere"], "no 000001.jpg"),
])
def test_bad_frames_are_named(tmp_path, args, message):
    det = tmp_path / "det.txt"
    det.write_text("1,-1,10,10,20,40,0.9,-1,-1,-1\n")
    r = _cli("--detections", det, "--out", tmp_path / "t.txt", *[a.format(tmp=tmp_path) for a in args])
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not (tmp_path / "t.txt").exists()


def test_frames_go_with_detections_only(tmp_path):
    r = _cli(DEMO / "people.mp4", "--model", DEMO / "person.onnx", "--frames", tmp_path, "--out", tmp_path / "t.txt")
    assert r.returncode == 2 and "--frames goes with --detections" in r.stderr


def test_the_detector_can_keep_one_class_and_run_tiled(tmp_path, shared_data):
    # the config's keep and tiles, on the command line: the COCO model's persons only, and tiled (small,
    # far people), as a user would run it live; tiles find more of MOT17-05's people than the whole frame
    d = shared_data / "mot" / "MOT17-05-FRCNN-mini"
    if not d.is_dir() or not (DEMO / "coco.onnx").is_file():
        pytest.skip("no MOT17-05 mini sequence or COCO detector")
    from edge_app.datasets.motchallenge import read_mot
    boxes = {}
    for name, extra in (("whole", []), ("tiled", ["--tiles", "3,2"])):
        out = tmp_path / f"{name}.txt"
        r = _cli(d, "--model", DEMO / "coco.onnx", "--keep", "person", *extra, "--min-hits", "1", "--interpolate-s", "0",
                 "--out", out, "--no-progress")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout.strip().splitlines()[-1])["frames"] == len(list((d / "img1").glob("*.jpg")))
        boxes[name] = len(read_mot(out).frames)
    assert boxes["tiled"] > max(boxes["whole"], 0)


@pytest.mark.parametrize("args, message", [
    (["--keep", "persn"], "--keep persn: not a class of coco.onnx (expected some of: person, bicycle"),
    (["--tiles", "3"], "--tiles '3': expected COLS,ROWS"),
])
def test_bad_detector_flags_are_named(tmp_path, shared_data, args, message):
    d = shared_data / "mot" / "MOT17-05-FRCNN-mini"
    if not d.is_dir() or not (DEMO / "coco.onnx").is_file():
        pytest.skip("no MOT17-05 mini sequence or COCO detector")
    r = _cli(d, "--model", DEMO / "coco.onnx", *args, "--out", tmp_path / "t.txt", "--no-progress")
    assert r.returncode != 0 and message in r.stderr, r.stderr
    assert not (tmp_path / "t.txt").exists()


def test_detector_flags_need_a_model(tmp_path):
    det = tmp_path / "det.txt"
    det.write_text("1,-1,10,10,20,40,0.9,-1,-1,-1\n")
    r = _cli("--detections", det, "--keep", "person", "--out", tmp_path / "t.txt")
    assert r.returncode == 2 and "--keep and --tiles go with --model" in r.stderr
