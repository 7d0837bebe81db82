"""The reference of every YOLO / RT-DETR head decoder: ultralytics' own post-processing, recorded.

Runs ONLY in ``var/venvs/ultralytics`` (ultralytics is AGPL-3.0: a test and benchmark tool here, never a
dependency of the product; ``make ultralytics-env`` builds that venv). Offline: ``YOLO_OFFLINE=1``, its
settings in var/ultralytics/config, no plots (no font download), no pretrained weights (models are built
from YAML).

    var/venvs/ultralytics/bin/python tests/decoders/ultralytics_reference.py train   # ~1 h on 2 cores, nice
    var/venvs/ultralytics/bin/python tests/decoders/ultralytics_reference.py record  # references -> fixtures

``train``: YOLOv8n, YOLOv5nu, YOLOv10n built from ultralytics' YAML and a scaled-down RT-DETR-l (RTDETR_TINY), trained a few epochs on
the shared raccoon set (small imgsz), exported to ONNX (var/ultralytics/<family>/model.onnx).
``export``: only the ONNX export of trained models. ``record``: for each ONNX and a few raccoon test images: ultralytics' predictor (its letterbox, its ONNX
Runtime call, its ``postprocess``), recording the raw network output it decoded and the final boxes,
scores and classes it returned, into tests/decoders/fixtures/ultralytics/<family>.npz (+ .json). Our
decoder is then checked against these in tests/decoders/test_heads_reference.py, in CI too.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "var" / "ultralytics"
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", str(WORK / "config"))
RACCOON = Path(os.environ.get("EDGE_VISION_DATA", ROOT.parent / "shared" / "data")) / "raccoon"
FIXTURES = ROOT / "tests" / "decoders" / "fixtures" / "ultralytics"
# family -> (YAML, image size, epochs: YOLOv8n trained 40 (~50 min here), the others 10: a decoder check
# needs real detections, not good ones). RT-DETR-l, the smallest RT-DETR ultralytics ships, trains at ~22
# min an epoch on 2 cores: the RT-DETR checked is rtdetr-tiny, the same architecture scaled down
# (RTDETR_TINY below), with ultralytics' own RT-DETR decoder head and post-processing.
MODELS = {"yolov8n": ("yolov8n.yaml", 256, 40), "yolov5nu": ("yolov5n.yaml", 256, 10),
          "yolov10n": ("yolov10n.yaml", 256, 10), "rtdetr-tiny": (str(WORK / "rtdetr-tiny.yaml"), 256, 30)}
# RT-DETR-l's layout (HGNet stem and blocks, AIFI on the stride-32 map, the CCFM top-down / bottom-up
# fusion, RTDETRDecoder on strides 8/16/32) at widths 16-384 instead of 32-2048, one HGBlock per stage,
# hidden 64, 100 queries, 2 decoder layers (RTDETRDecoder args: nc, hidden, queries, points, heads, layers,
# ffn): about 1 M parameters.
RTDETR_TINY = {
    "nc": 1, "scales": {"t": [1.0, 1.0, 1024]},
    "backbone": [[-1, 1, "HGStem", [16, 24]],
                 [-1, 2, "HGBlock", [24, 64, 3]],
                 [-1, 1, "DWConv", [64, 3, 2, 1, False]],
                 [-1, 2, "HGBlock", [48, 128, 3]],                  # 3: stride 8
                 [-1, 1, "DWConv", [128, 3, 2, 1, False]],
                 [-1, 2, "HGBlock", [64, 256, 5, True, False]],     # 5: stride 16
                 [-1, 1, "DWConv", [256, 3, 2, 1, False]],
                 [-1, 2, "HGBlock", [96, 384, 5, True, False]]],    # 7: stride 32
    "head": [[-1, 1, "Conv", [64, 1, 1, None, 1, 1, False]],
             [-1, 1, "AIFI", [256, 4]],
             [-1, 1, "Conv", [64, 1, 1]],                           # 10
             [-1, 1, "nn.Upsample", [None, 2, "nearest"]],
             [5, 1, "Conv", [64, 1, 1, None, 1, 1, False]],
             [[-2, -1], 1, "Concat", [1]],
             [-1, 1, "RepC3", [64]],
             [-1, 1, "Conv", [64, 1, 1]],                           # 15
             [-1, 1, "nn.Upsample", [None, 2, "nearest"]],
             [3, 1, "Conv", [64, 1, 1, None, 1, 1, False]],
             [[-2, -1], 1, "Concat", [1]],
             [-1, 1, "RepC3", [64]],                                # 19: stride 8 out
             [-1, 1, "Conv", [64, 3, 2]],
             [[-1, 15], 1, "Concat", [1]],
             [-1, 1, "RepC3", [64]],                                # 22: stride 16 out
             [-1, 1, "Conv", [64, 3, 2]],
             [[-1, 10], 1, "Concat", [1]],
             [-1, 1, "RepC3", [64]],                                # 25: stride 32 out
             [[19, 22, 25], 1, "RTDETRDecoder", ["nc", 64, 100, 4, 4, 2, 256]]],
}
IMAGES = ["raccoon-1.jpg", "raccoon-12.jpg", "raccoon-60.jpg", "raccoon-115.jpg", "raccoon-196.jpg"]
# YOLOv10n's one-to-one (NMS-free) head scores under 0.011 after its 10 epochs here, rtdetr-tiny's under 0.28
# after 30 (mAP50 0.20): their thresholds are set so that a handful of real boxes pass (a decoder check,
# not an accuracy claim)
CONF = {"yolov8n": 0.1, "yolov5nu": 0.1, "yolov10n": 0.0085, "rtdetr-tiny": 0.2}
IOU = 0.5


def yolo_dataset() -> Path:
    """The raccoon VOC set as ultralytics wants it (images + one label .txt per image), train/test splits."""
    import csv

    out = WORK / "raccoon"
    for split in ("train", "test"):
        rows = list(csv.DictReader(open(RACCOON / "splits" / f"{split}_labels.csv")))
        (out / split / "images").mkdir(parents=True, exist_ok=True)
        (out / split / "labels").mkdir(parents=True, exist_ok=True)
        boxes: dict[str, list[str]] = {}
        for r in rows:
            w, h = float(r["width"]), float(r["height"])
            x0, y0, x1, y1 = (float(r[k]) for k in ("xmin", "ymin", "xmax", "ymax"))
            boxes.setdefault(r["filename"], []).append(
                f"0 {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}")
        for name, lines in boxes.items():
            link = out / split / "images" / name
            if not link.exists():
                link.symlink_to(RACCOON / "images" / name)
            (out / split / "labels" / f"{Path(name).stem}.txt").write_text("\n".join(lines) + "\n")
    yaml = out / "data.yaml"
    yaml.write_text(f"path: {out}\ntrain: train/images\nval: test/images\nnames:\n  0: raccoon\n")
    return yaml


def train(families: list[str]) -> None:
    from ultralytics import RTDETR, YOLO

    data = yolo_dataset()
    (WORK / "rtdetr-tiny.yaml").write_text(json.dumps(RTDETR_TINY, indent=1) + "\n")  # JSON is YAML
    for family in families:
        cfg, imgsz, epochs = MODELS[family]
        model = (RTDETR if family.startswith("rtdetr") else YOLO)(cfg)
        model.train(data=str(data), epochs=epochs, imgsz=imgsz, batch=8, workers=0, device="cpu", plots=False,
                    amp=False, project=str(WORK / "runs"), name=family, exist_ok=True, verbose=False, seed=0,
                    pretrained=False)
        export([family])


def export(families: list[str]) -> None:
    """best.pt -> var/ultralytics/<family>/model.onnx; YOLOv10 with its NMS-free one-to-one head
    (``nms=False``: the end-to-end (1, 300, 6) output; the default export is the one-to-many raw head)."""
    from ultralytics import RTDETR, YOLO

    for family in families:
        best = WORK / "runs" / family / "weights" / "best.pt"
        onnx = (RTDETR if family.startswith("rtdetr") else YOLO)(str(best)).export(
            format="onnx", imgsz=MODELS[family][1], opset=17, simplify=False, dynamic=False,
            **({"nms": False} if family.startswith("yolov10") else {}))
        dest = WORK / family / "model.onnx"
        dest.parent.mkdir(parents=True, exist_ok=True)
        Path(onnx).replace(dest)
        print(json.dumps({"family": family, "onnx": str(dest)}), flush=True)


def record(families: list[str]) -> None:
    import cv2
    import numpy as np
    from ultralytics import RTDETR, YOLO
    from ultralytics import __version__ as version

    FIXTURES.mkdir(parents=True, exist_ok=True)
    for family in families:
        onnx = WORK / family / "model.onnx"
        model = RTDETR(str(onnx)) if family.startswith("rtdetr") else YOLO(str(onnx), task="detect")
        conf = CONF[family]
        arrays, meta = {}, {"family": family, "ultralytics": version, "conf": conf, "iou": IOU, "max_det": 300,
                            "imgsz": MODELS[family][1], "images": []}
        for k, name in enumerate(IMAGES):
            image = cv2.imread(str(RACCOON / "images" / name))
            model.predict(image, conf=conf, iou=IOU, max_det=300, verbose=False, device="cpu")  # sets up predictor
            p = model.predictor
            im = p.preprocess([image])
            raw = p.inference(im)
            results = p.postprocess(raw, im, [image])
            out = raw[0] if isinstance(raw, (list, tuple)) else raw
            boxes = results[0].boxes
            arrays[f"raw{k}"] = out.detach().cpu().numpy().astype(np.float32)
            arrays[f"input{k}"] = im.detach().cpu().numpy().astype(np.float16)  # what its letterbox fed the model
            arrays[f"boxes{k}"] = boxes.xyxy.cpu().numpy().astype(np.float32)
            arrays[f"scores{k}"] = boxes.conf.cpu().numpy().astype(np.float32)
            arrays[f"classes{k}"] = boxes.cls.cpu().numpy().astype(np.int64)
            meta["images"].append({"file": name, "width": image.shape[1], "height": image.shape[0],
                                   "detections": int(len(boxes))})
        np.savez_compressed(FIXTURES / f"{family}.npz", **arrays)
        (FIXTURES / f"{family}.json").write_text(json.dumps(meta, indent=1) + "\n")
        print(json.dumps(meta), flush=True)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "record"
    chosen = sys.argv[2].split(",") if len(sys.argv) > 2 else list(MODELS)
    {"train": train, "export": export, "record": record}[what](chosen)
