"""`edge-app inspect` on the demo artifacts: metadata, variants, recommendation, thresholds and whether
they were chosen for this very model, validation, engines; human and JSON."""
import json
import shutil
import subprocess
import sys


def _inspect(path, *extra):
    return subprocess.run([sys.executable, "-m", "edge_app", "inspect", str(path), *extra], capture_output=True,
                          text=True, timeout=60)


def test_inspect_the_demo_detector(demo_detector):
    r = _inspect(demo_detector, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["task"] == "detection" and d["classes"] == ["circle", "square", "triangle"]
    assert d["input"]["size_hw"] == [320, 320] and d["input"]["color"] == "RGB"
    assert d["thresholds"]["state"] == "matches this model" and d["thresholds"]["rule"] == "score >= threshold"
    assert d["variants"][0] == {"precision": "fp32", "file": "detector.onnx", "size_mb": d["variants"][0]["size_mb"],
                                "state": "ok"}
    assert d["recommendation"]["checked"] is True and d["validation"]["AP50"] > 0.8
    assert {e["precision"]: e["state"] for e in d["engines"]} == {"fp32": "missing", "fp16": "missing", "int8": "missing"}
    human = _inspect(demo_detector).stdout
    assert "classes (3): circle, square, triangle" in human and "score >= threshold" in human


def test_inspect_names_stale_thresholds_and_variants(tmp_path, demo_segmenter, demo_detector):
    for name in ("detector.onnx", "detector.json", "detector.thresholds.json"):
        shutil.copy(demo_detector.with_name(name), tmp_path / name)
    t = tmp_path / "detector.thresholds.json"
    t.write_text(json.dumps({**json.loads(t.read_text()), "onnx_sha256": "0" * 64}))
    d = json.loads(_inspect(tmp_path / "detector.onnx", "--json").stdout)
    assert d["thresholds"]["state"].startswith("chosen for another version")
    seg = json.loads(_inspect(demo_segmenter, "--json").stdout)
    assert [v["precision"] for v in seg["variants"]][:2] == ["fp32", "int8"]
    assert seg["thresholds"] is None and seg["task"] == "segmentation"


def test_inspect_a_missing_file_exits_2(tmp_path):
    r = _inspect(tmp_path / "nope.onnx")
    assert r.returncode == 2 and "nope.onnx" in r.stderr


def test_thresholds_chosen_on_the_recommended_int8_variant_are_not_called_stale(tmp_path):
    # calibrate picks the person detector's thresholds on the INT8 file it recommends; the runtime runs
    # that file, so inspect must say the thresholds match it (it called them stale against the FP32 file)
    from pathlib import Path

    demo = Path(__file__).resolve().parents[2] / "edge_app" / "demo"
    for name in ("person.onnx", "person.json", "person.int8.onnx", "person.int8.json", "person.thresholds.json",
                 "person.precision.json"):
        shutil.copy(demo / name, tmp_path / name)
    d = json.loads(_inspect(tmp_path / "person.onnx", "--json").stdout)
    assert d["thresholds"]["precision"] == "int8"
    assert d["thresholds"]["state"].startswith("matches its int8 variant")
    (tmp_path / "person.int8.onnx").unlink()                       # without that file they are another model's
    d = json.loads(_inspect(tmp_path / "person.onnx", "--json").stdout)
    assert d["thresholds"]["state"].startswith("chosen for another version")


def test_inspect_says_what_is_on_disk_and_no_none(demo_detector):
    # issue 24: "delta None pts", and variants listed that were not on disk
    r = _inspect(demo_detector)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "None" not in text and "baseline" in text
    for line in text.splitlines():
        if line.strip().startswith(("fp16", "int8")):
            name = line.split()[0]
            present = (demo_detector.parent / f"{demo_detector.stem}.{name}.onnx").is_file()
            assert ("not on disk" in line) != present, line
