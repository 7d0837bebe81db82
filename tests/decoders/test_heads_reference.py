"""Every YOLO / RT-DETR head decoder against that family's own post-processing: ultralytics' predictor
(its letterbox, ONNX Runtime, its ``postprocess``: NMS or none) on models built from its YAML, trained on
the shared raccoon set and exported to ONNX (tests/decoders/ultralytics_reference.py, run in its own venv:
ultralytics is AGPL, a test tool here). Recorded per image: the raw network output it decoded and the
boxes, scores and classes it returned; checked here in CI (no ultralytics needed): our layout reading,
preprocessing geometry, head decoder and NMS give the same detections, IoU >= 0.99, at the same threshold.
With the ultralytics venv, the whole chain (our preprocessing + ONNX Runtime + decoder) on the ONNX files.
"""
import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_app.core.artifact import ArtifactMeta
from edge_app.core.boxes import iou_matrix
from edge_app.frames.preprocess import Preprocessor
from edge_app.decoders import DetectionDecoder
from edge_app.decoders.heads.layout import detect

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "decoders" / "fixtures" / "ultralytics"
RACCOON = ROOT.parent / "shared" / "data" / "raccoon" / "images"
U_PY = ROOT / "var" / "venvs" / "ultralytics" / "bin" / "python"
FAMILIES = sorted(p.stem for p in FIXTURES.glob("*.json"))
EXPECTED_HEAD = {"yolov8n": "yolo", "yolov5nu": "yolo", "yolov10n": "yolo-e2e", "rtdetr-tiny": "detr"}
HINT = {"yolov10n": "yolo-e2e", "rtdetr-tiny": "detr"}  # (1, K, 6) fits both: the importer asks for --head


def artifact_meta(family: str, raw_shape: tuple, imgsz: int) -> ArtifactMeta:
    lay = detect({"output0": tuple(raw_shape)}, (imgsz, imgsz), 1, HINT.get(family, "auto"))
    assert lay.head == EXPECTED_HEAD[family], lay
    return ArtifactMeta(task="detection", classes=("raccoon",), input_size=(imgsz, imgsz), color="RGB",
                        mean=(0, 0, 0), std=(1, 1, 1), resize="stretch" if lay.head == "detr" else "letterbox",
                        pad_value=114, score="sigmoid", outputs={r: "output0" for r in lay.outputs}, head=lay.head,
                        head_params=lay.params)


def compare(ours, boxes, scores, classes, size) -> float:
    """The worst IoU of a one-to-one match of ultralytics' detections to ours (same class, score within
    1e-5). Its boxes are clipped to the image first: its YOLO post-processing clips them, its RT-DETR one
    does not (boxes reach past the image), and ours clips every family's to the frame."""
    assert len(ours) == len(boxes), (len(ours), len(boxes), ours.scores, scores)
    if not len(boxes):
        return 1.0
    boxes = np.clip(boxes, 0, np.array([size[0], size[1], size[0], size[1]], np.float32))
    iou = iou_matrix(boxes, ours.boxes)
    used: set[int] = set()
    best = []
    for i in range(len(boxes)):  # one to one, greedily (untrained heads give identical boxes)
        order = [int(j) for j in np.argsort(-iou[i]) if int(j) not in used and ours.classes[j] == classes[i]
                 and abs(ours.scores[j] - scores[i]) <= 1e-5]
        assert order, (i, boxes[i], scores[i])
        used.add(order[0])
        best.append(order[0])
    return float(min(iou[i, j] for i, j in enumerate(best)))


@pytest.mark.skipif(not FAMILIES, reason="no recorded ultralytics references in tests/decoders/fixtures/ultralytics")
@pytest.mark.parametrize("family", FAMILIES)
def test_our_decoder_gives_ultralytics_detections(family):
    meta_json = json.loads((FIXTURES / f"{family}.json").read_text())
    arrays = np.load(FIXTURES / f"{family}.npz")
    total = 0
    for k, image in enumerate(meta_json["images"]):
        raw = arrays[f"raw{k}"]
        meta = artifact_meta(family, raw.shape, meta_json["imgsz"])
        decoder = DetectionDecoder(meta, score_threshold=np.nextafter(np.float32(meta_json["conf"]), np.float32(1)),
                                   iou_threshold=meta_json["iou"], top_k=30000, max_detections=meta_json["max_det"])
        pre = Preprocessor.from_meta(meta)
        geo = pre.geometry(image["width"], image["height"])
        ours = decoder({"output0": raw}, geo)
        worst = compare(ours, arrays[f"boxes{k}"], arrays[f"scores{k}"], arrays[f"classes{k}"],
                        (image["width"], image["height"]))
        assert worst >= 0.99, (family, image["file"], worst)
        total += len(ours)
        if RACCOON.is_dir():  # our preprocessing = its letterbox / stretch, pixel for pixel (float16 record)
            x, _ = pre(cv2.imread(str(RACCOON / image["file"])))
            assert np.abs(x - arrays[f"input{k}"].astype(np.float32)).max() < 2e-3
    assert total == sum(i["detections"] for i in meta_json["images"]) > 0


@pytest.mark.skipif(not U_PY.is_file(), reason="needs the ultralytics venv: make ultralytics-env (AGPL: tests only)")
@pytest.mark.skipif(not (ROOT / "var" / "ultralytics").is_dir(), reason="needs the trained models: "
                    "var/venvs/ultralytics/bin/python tests/decoders/ultralytics_reference.py train")
@pytest.mark.parametrize("family", FAMILIES)
def test_the_whole_chain_on_the_onnx_file_against_ultralytics(family, tmp_path):
    """Our import (layout, preprocessing from the file's own metadata) + runtime on the ONNX file vs
    ultralytics' predictor on the same file and images, run now in its venv (offline)."""
    from edge_app.inference.models import open_artifact

    onnx_path = ROOT / "var" / "ultralytics" / family / "model.onnx"
    if not onnx_path.is_file():
        pytest.skip(f"{onnx_path} not trained")
    meta_json = json.loads((FIXTURES / f"{family}.json").read_text())
    out = tmp_path / "model.onnx"
    r = subprocess.run([os.environ.get("PYTHON", str(ROOT / ".venv" / "bin" / "python")), "-m", "edge_app", "import",
                        str(onnx_path), "--out", str(out), "--frames", str(RACCOON), "--parity-frames", "3",
                        *(["--head", HINT[family]] if family in HINT else [])],
                       capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-2000:]
    model = open_artifact(out, score_threshold=float(np.nextafter(np.float32(meta_json["conf"]), np.float32(1))),
                          nms_iou=meta_json["iou"], top_k=30000, max_detections=300)
    arrays = np.load(FIXTURES / f"{family}.npz")
    for k, image in enumerate(meta_json["images"]):
        ours = model.predict(cv2.imread(str(RACCOON / image["file"]))).detections
        assert compare(ours, arrays[f"boxes{k}"], arrays[f"scores{k}"], arrays[f"classes{k}"],
                       (image["width"], image["height"])) >= 0.99
