"""Calibration: thresholds on constructed PR curves, the evaluate CLI (vs pycocotools, malformed files),
atomic reports, and calibrate end to end with the runtime picking the thresholds up."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from calibration import report
from calibration.calibrate import apply_to_config
from calibration.thresholds import choose_thresholds, pick_threshold
from edge_app.core.detection_metrics import PRCurve

ROOT = Path(__file__).resolve().parents[2]


def _curve(tp, scores, num_gt):
    tp = np.asarray(tp, bool)
    ctp = np.cumsum(tp)
    n = np.arange(1, len(tp) + 1)
    return PRCurve(np.asarray(scores, float), ctp / n, ctp / num_gt, num_gt)


def test_threshold_maximising_f1_is_the_known_optimum():
    # ranked: TP TP FP TP FP FP against 3 truths: F1 = .5 .8 .667 .857 .75 .667 -> the 4th (score .6)
    curve = _curve([1, 1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], 3)
    c = pick_threshold(curve, "f1")
    assert c.threshold == 0.6 and c.f1 == pytest.approx(6 / 7)
    assert (c.precision, c.recall) == (pytest.approx(0.75), pytest.approx(1.0))


def test_precision_and_recall_floors():
    curve = _curve([1, 1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], 3)
    assert pick_threshold(curve, "precision", floor=0.95).threshold == 0.8   # P=1 down to .8
    assert pick_threshold(curve, "precision", floor=0.7).threshold == 0.6    # P=.75 at .6
    assert pick_threshold(curve, "recall", floor=0.6).threshold == 0.8       # R=2/3 first reached at .8


def test_equal_scores_are_one_operating_point():
    # the first two share a score: a threshold keeps both, so the point after the first is unreachable
    curve = _curve([1, 0, 1], [0.9, 0.9, 0.5], 2)
    c = pick_threshold(curve, "f1")
    assert c.threshold in (0.9, 0.5) and not (c.precision == 1.0 and c.recall == 0.5)


def test_empty_curve_keeps_default():
    c = pick_threshold(PRCurve(np.zeros(0), np.zeros(0), np.zeros(0), 0), default=0.4)
    assert c.threshold == 0.4 and np.isnan(c.f1)


def test_only_classes_the_labels_show_are_calibrated():
    # person: labelled, its F1 optimum is 0.6; car: detections but the labels do not name it (MOT's
    # unlabelled cars); dog: named by the labels, but none in these images; cat: labelled, never detected.
    person = _curve([1, 1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], 3)
    car = PRCurve(np.array([0.46, 0.3]), np.zeros(2), np.full(2, np.nan), 0)
    dog = PRCurve(np.array([0.7]), np.zeros(1), np.full(1, np.nan), 0)
    cat = PRCurve(np.zeros(0), np.zeros(0), np.zeros(0), 4)
    chosen = choose_thresholds([person, car, dog, cat], ("person", "car", "dog", "cat"),
                               np.array([True, False, True, True]), "f1", 0.9)
    assert set(chosen) == {"person"} and chosen["person"].threshold == 0.6


# ---- evaluate CLI ---------------------------------------------------------------------------------
from tests.core.test_detection_metrics import _pycocotools_stats, _random_coco  # noqa: E402


def _evaluate(tmp_path, gt, dets, *extra):
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dets) if not isinstance(dets, str) else dets)
    return subprocess.run([sys.executable, "-m", "edge_app", "evaluate", "--gt", str(tmp_path / "gt.json"),
                           "--detections", str(tmp_path / "dt.json"), *extra], capture_output=True, text=True,
                          timeout=120)


def _reference(gt, dets, library):
    """COCO stats and per-category AP (mean of precision over IoU and recall thresholds, area all, 100
    detections; None without labels) straight from a reference library, not through edge-app."""
    if library == "pycocotools":
        ev = _pycocotools_stats(gt, dets)
    else:
        from faster_coco_eval import COCO as FCOCO
        from faster_coco_eval import COCOeval_faster
        import contextlib, io
        with contextlib.redirect_stdout(io.StringIO()):
            coco = FCOCO(gt)
            ev = COCOeval_faster(coco, coco.loadRes(dets), "bbox")
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
    precision = np.asarray(ev.eval["precision"])  # (T, R, K, A, M)
    cats = sorted(gt["categories"], key=lambda c: c["id"])
    per_class = {}
    for k, c in enumerate(cats):
        v = precision[:, :, k, 0, -1]
        per_class[c["name"]] = float(v[v > -1].mean()) if (v > -1).any() else None
    return np.asarray(ev.stats[:12]), per_class


# Each backend of `edge-app evaluate` against a library it does not run on (never one library twice).
@pytest.mark.parametrize("backend, reference", [("faster_coco_eval", "pycocotools"),
                                                ("pycocotools", "faster_coco_eval"),
                                                ("edge_app.core", "pycocotools")])
def test_evaluate_prints_coco_stats_equal_to_an_independent_reference(tmp_path, backend, reference):
    for lib in {backend.split(".")[0], reference} - {"edge_app"}:
        pytest.importorskip(lib)
    gt, dets = _random_coco(4)
    r = _evaluate(tmp_path, gt, dets, "--backend", backend)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    stats, per_class = _reference(gt, dets, reference)
    keys = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100"]
    assert list(out)[:9] == keys
    np.testing.assert_allclose([out[k] for k in keys], stats[:9], atol=1e-6)
    assert set(out["per_class"]) == set(per_class)
    for name, ap in per_class.items():  # per-class values, not only their names
        assert (out["per_class"][name] is None) == (ap is None), name
        if ap is not None:
            assert out["per_class"][name] == pytest.approx(ap, abs=1e-6), name
    assert any(v is not None and v > 0 for v in per_class.values())


@pytest.mark.parametrize("dets, message", [
    ("{broken", "dt.json: not valid JSON"),
    ('{"a": 1}', "expected a JSON list"),
    ('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}]', "entry 0: missing 'score'"),
    ('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 0.5}]', "entry 0: bbox must be"),
    ('[{"image_id": 999, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}]', "entry 0: image_id 999"),
    ('[{"image_id": 1, "category_id": 77, "bbox": [0, 0, 1, 1], "score": 0.5}]', "entry 0: category_id 77"),
])
def test_evaluate_malformed_files_exit_2_naming_file_and_entry(tmp_path, dets, message):
    gt, _ = _random_coco(1)
    r = _evaluate(tmp_path, gt, dets)
    assert r.returncode == 2
    assert message in r.stderr


def test_evaluate_malformed_gt(tmp_path):
    r = _evaluate(tmp_path, {"images": [], "annotations": [{"id": 1}], "categories": []}, "[]")
    assert r.returncode == 2 and "gt.json: annotations[0]: missing 'image_id'" in r.stderr


# ---- reports ---------------------------------------------------------------------------------------
def test_interrupted_report_leaves_previous_intact(tmp_path):
    out = tmp_path / "rep"
    with report.staged(out) as folder:
        (folder / "report.json").write_text('{"v": 1}')
    with pytest.raises(RuntimeError):
        with report.staged(out) as folder:
            (folder / "report.json").write_text('{"v": 2, "partial": ')
            raise RuntimeError("interrupted")
    assert json.loads((out / "report.json").read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # no temporary folders left behind


def test_apply_to_config_keeps_comments_and_other_models(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('# top\n[models.det]\nkind = "detector"\nprecision = "auto"   # keep me\n\n[models.seg]\n'
                   'kind = "classical"\n')
    apply_to_config(cfg, "det", "int8", tmp_path / "t.json")
    text = cfg.read_text()
    assert 'precision = "int8"   # keep me' in text and 'thresholds_file = "t.json"' in text  # relative to it
    assert text.startswith("# top") and '[models.seg]\nkind = "classical"' in text


# ---- end to end -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_calibrate_detector_writes_report_thresholds_and_runtime_uses_them(tmp_path, demo_detector):
    import shutil
    art = tmp_path / "det"
    art.mkdir()
    shutil.copy(demo_detector, art / "model.onnx")
    shutil.copy(demo_detector.with_suffix(".json"), art / "model.json")
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[models.det]\nkind = "detector"\nartifact = "{art / "model.onnx"}"\nprecision = "auto"\n'
                   '[output.http]\nenabled = false\n')
    r = subprocess.run([sys.executable, "-m", "edge_app", "calibrate", "--config", str(cfg), "--limit", "12",
                        "--out", str(tmp_path / "report"), "--apply", "--no-progress"], capture_output=True,
                       text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((tmp_path / "report" / "report.json").read_text())
    m = rep["models"][0]
    assert m["task"] == "detection" and m["precisions"][0]["precision"] == "fp32"
    # backend x precision side by side: every row says both; FP32 on ONNX Runtime is the reference
    from edge_app.backends import installed
    from edge_app.backends.cpu import cpu_info
    pairs = {(r["backend"], r["precision"]) for r in m["precisions"]}
    assert m["precisions"][0]["backend"] == "onnxruntime" and ("openvino", "fp32") in pairs or not installed("openvino")
    if installed("openvino") and cpu_info().has("BF16"):
        assert ("openvino", "bf16") in pairs
    rec = json.loads((art / "model.precision.json").read_text())
    assert rec["cpu"] == cpu_info().signature() and rec["machine"] == cpu_info().describe()
    assert {(c["backend"], c["precision"]) for c in rec["table"]} == pairs
    assert (rec["backend"], rec["precision"]) == (m["recommended_backend"], m["recommended"])
    assert "backend =" not in cfg.read_text()  # auto: the runtime takes the backend from the recommendation
    assert 0 < m["coco"]["AP50"] <= 1 and len(m["per_class"]) == 3
    html = (tmp_path / "report" / "report.html").read_text()
    assert "data:image/png;base64," in html and "Precisions side by side" in html
    thresholds = json.loads((art / "model.thresholds.json").read_text())
    assert set(thresholds["score_thresholds"]) == {"circle", "square", "triangle"}
    assert "thresholds_file" in cfg.read_text()  # --apply wrote it into the config
    # the runtime loads that file and says so
    from edge_app.config import load_config
    from edge_app.app import model_specs
    from edge_app.inference.models import open_model
    spec = model_specs(load_config(cfg))[0]
    model = open_model(spec)
    assert str(art / "model.thresholds.json") in model.describe()
    assert (model.backend.name, model.precision) == (rec["backend"], rec["precision"])
    np.testing.assert_allclose(model.decoder.score_thresholds,
                               [thresholds["score_thresholds"][c] for c in model.classes], rtol=1e-6)


def test_latencies_taken_in_turns_rank_models(demo_detector, demo_segmenter):
    # Variants are timed taking turns (one noisy minute falls on all of them): every model gets its
    # figures, and the demo U-Net segmenter (~20 ms here) is slower than the SSDLite detector (~8 ms).
    from calibration.evaluate import measure_latencies, open_for_eval
    from edge_app.datasets.synthetic import make_sample

    models = {"det": open_for_eval(demo_detector), "seg": open_for_eval(demo_segmenter)}
    image = make_sample(np.random.default_rng(0), 640, 480).image
    lat = measure_latencies(models, image, rounds=3, runs=4, warmup=2)
    assert set(lat) == {"det", "seg"}
    for v in lat.values():
        assert 0 < v["median_ms"] <= v["p90_ms"]
    assert lat["seg"]["median_ms"] > lat["det"]["median_ms"]


def _row(precision, ms, ok=True, backend="onnxruntime"):
    return {"backend": backend, "precision": precision, "median_ms": ms, "within_tolerance": ok,
            "speedup_vs_fp32": 10.0 / ms, "delta_points": 0.0 if ok else -3.0}


@pytest.mark.parametrize("rows, chosen", [
    ([_row("fp32", 10), _row("int8", 9.9)], "onnxruntime fp32"),               # 1 % faster: noise, FP32 stays
    ([_row("fp32", 10), _row("int8", 8.0)], "onnxruntime int8"),               # clearly faster, within tolerance
    ([_row("fp32", 10), _row("int8", 5.0, ok=False), _row("fp16", 9.0)], "onnxruntime fp16"),  # INT8 loses too much
    ([_row("fp32", 10), _row("int8", 12.0)], "onnxruntime fp32"),              # slower
    # backends side by side: OpenVINO BF16 fastest within the tolerance; its INT8 faster but out of it
    ([_row("fp32", 10), _row("int8", 8.0), _row("fp32", 9.0, backend="openvino"),
      _row("bf16", 6.0, backend="openvino"), _row("int8", 4.0, ok=False, backend="openvino")], "openvino bf16"),
])
def test_recommendation_needs_a_real_speedup_within_tolerance(rows, chosen):
    from calibration.calibrate import recommend
    best, why = recommend(rows)
    assert f"{best['backend']} {best['precision']}" == chosen
    assert why.startswith("no other") == (chosen == "onnxruntime fp32")


def test_an_unchecked_variant_is_never_recommended():
    from calibration.calibrate import recommend
    rows = [_row("fp32", 10), {**_row("int8", 5.0), "within_tolerance": None, "delta_points": None}]
    assert recommend(rows)[0]["precision"] == "fp32"


def test_apply_writes_the_backend_only_over_another_explicit_one(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[models.a]\nkind = "classical"\n[models.b]\nkind = "classical"\nbackend = "onnxruntime"\n'
                   '[models.c]\nkind = "classical"\nbackend = "openvino"\n')
    for name in ("a", "b", "c"):
        apply_to_config(cfg, name, "bf16", None, "openvino")
    text = cfg.read_text()
    assert '[models.a]\nkind = "classical"\nprecision = "bf16"\n' in text            # auto stays auto
    assert '[models.b]\nkind = "classical"\nbackend = "openvino"\nprecision = "bf16"' in text  # bf16 needs it
    assert text.count('backend = "openvino"') == 2


def test_apply_refuses_what_the_schema_refuses(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('[models.det]\nkind = "classical"\n')
    with pytest.raises(SystemExit, match="not one of"):
        apply_to_config(cfg, "det", "int4", None)
    with pytest.raises(SystemExit, match="no \\[models.other\\] table"):
        apply_to_config(cfg, "other", "fp32", None)
    assert cfg.read_text() == '[models.det]\nkind = "classical"\n'  # untouched


@pytest.mark.slow
def test_apply_int8_qdq_then_run(tmp_path, demo_detector):
    """calibrate can recommend the TensorRT-style INT8 variant; --apply writes it and the runtime runs it."""
    pytest.importorskip("onnx", reason="the train extra makes INT8 variants")
    import shutil
    from conversion.quantize import to_int8
    from edge_app.app import model_specs
    from edge_app.config import load_config
    from edge_app.inference.models import open_model
    from edge_app.datasets.synthetic import make_sample

    art = tmp_path / "det"
    art.mkdir()
    shutil.copy(demo_detector, art / "model.onnx")
    shutil.copy(demo_detector.with_suffix(".json"), art / "model.json")
    rng = np.random.default_rng(0)
    to_int8(art / "model.onnx", art / "model.int8-qdq.onnx", [make_sample(rng, 640, 480).image for _ in range(4)],
            recipe="int8-qdq")
    cfg = tmp_path / "config.toml"
    cfg.write_text('# mine\n[models.det]\nkind = "detector"\nartifact = "det/model.onnx"   # my model\n'
                   'precision = "auto"\n[output.http]\nenabled = false\n')
    apply_to_config(cfg, "det", "int8-qdq", None)
    assert 'precision = "int8-qdq"' in cfg.read_text() and "# my model" in cfg.read_text()
    check = subprocess.run([sys.executable, "-m", "edge_app", "config", "check", str(cfg)], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    model = open_model(model_specs(load_config(cfg))[0])
    assert model.precision == "int8-qdq" and model.path.name == "model.int8-qdq.onnx"
    assert model.predict(make_sample(rng, 640, 480).image).detections is not None


@pytest.mark.slow
def test_calibrate_leaves_unlabelled_classes_at_the_configured_threshold(tmp_path, demo_detector):
    # Labels of circles only (as the MOT frames label people only): circle gets a calibrated threshold,
    # square and triangle keep the config's score_threshold (0.33 here, not the default) in the runtime.
    import shutil

    import cv2
    from edge_app.app import model_specs
    from edge_app.config import load_config
    from edge_app.datasets.voc import voc_xml
    from edge_app.inference.models import open_model
    from edge_app.datasets.synthetic import CLASSES, make_sample

    def labels_of(name: str, rng: np.random.Generator) -> Path:
        """16 synthetic scenes as VOC with the boxes of one class only (the others unlabelled)."""
        data = tmp_path / f"{name}s"
        (data / "images").mkdir(parents=True)
        (data / "annotations").mkdir()
        for i in range(16):
            s = make_sample(rng, 320, 320)
            cv2.imwrite(str(data / "images" / f"{i:03d}.png"), s.image)
            objects = [(name, [round(float(v)) for v in b]) for b, c in zip(s.truth.boxes, s.truth.classes)
                       if CLASSES[c] == name]
            (data / "annotations" / f"{i:03d}.xml").write_text(voc_xml(f"{i:03d}.png", 320, 320, objects))
        return data

    rng = np.random.default_rng(5)
    data = labels_of("circle", rng)
    shutil.copy(demo_detector, tmp_path / "model.onnx")
    shutil.copy(demo_detector.with_suffix(".json"), tmp_path / "model.json")
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[models.det]\nkind = "detector"\nartifact = "{tmp_path / "model.onnx"}"\nprecision = "fp32"\n'
                   'score_threshold = 0.33\n[output.http]\nenabled = false\n')
    r = subprocess.run([sys.executable, "-m", "edge_app", "calibrate", "--config", str(cfg), "--data", str(data),
                        "--thresholds", str(tmp_path / "t.json"), "--out", str(tmp_path / "report"), "--apply",
                        "--no-progress"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    t = json.loads((tmp_path / "t.json").read_text())
    assert list(t["score_thresholds"]) == ["circle"] and t["score_thresholds"]["circle"] != 0.33
    assert t["uncalibrated"]["classes"] == ["square", "triangle"] and t["uncalibrated"]["assumed"] == 0.33
    rows = {row["class"]: row for row in json.loads((tmp_path / "report" / "report.json").read_text())
            ["models"][0]["per_class"]}
    assert rows["circle"]["source"] == "calibrated" and rows["square"]["source"] == "default"
    model = open_model(model_specs(load_config(cfg))[0])
    got = dict(zip(model.classes, model.decoder.score_thresholds.tolist()))
    assert got["circle"] == pytest.approx(t["score_thresholds"]["circle"])
    assert got["square"] == pytest.approx(0.33) and got["triangle"] == pytest.approx(0.33)

    # Labels of squares next (a user labelling cars after people): circle keeps its earlier threshold
    # instead of falling back to 0.33; --forget-thresholds starts over.
    squares = labels_of("square", rng)

    def again(*extra: str) -> dict:
        r = subprocess.run([sys.executable, "-m", "edge_app", "calibrate", "--config", str(cfg), "--data",
                            str(squares), "--thresholds", str(tmp_path / "t.json"), "--out",
                            str(tmp_path / "report"), "--apply", "--no-progress", *extra],
                           capture_output=True, text=True, timeout=600, cwd=ROOT)
        assert r.returncode == 0, r.stderr[-3000:]
        return json.loads((tmp_path / "t.json").read_text())

    t2 = again()
    assert set(t2["score_thresholds"]) == {"circle", "square"}
    assert t2["score_thresholds"]["circle"] == t["score_thresholds"]["circle"]
    assert t2["kept"]["classes"] == ["circle"] and t2["uncalibrated"]["classes"] == ["triangle"]
    rows = {row["class"]: row for row in json.loads((tmp_path / "report" / "report.json").read_text())
            ["models"][0]["per_class"]}
    assert rows["circle"]["source"] == "kept" and rows["square"]["source"] == "calibrated"
    assert list(again("--forget-thresholds")["score_thresholds"]) == ["square"]
