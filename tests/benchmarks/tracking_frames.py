"""Where frames exist, for bench_tracking.py (``--part frames``): what the frame-based cues (camera-motion
compensation, the colour appearance cue) cost per frame and what they give.

1. The MOT17 ``*-mini`` sequences (shared: their first 4-8 frames as JPEG, with ground truth): the cues
   measured on the frames themselves (the boxes' IoU to the next frame with and without GMC, appearance
   rank-1 against chance).
2. Whole sequences with their frames (``--frames DIR``, default var/mot-frames: MOTChallenge layout with
   img1/; ADL-Rundle-6 from raphrb2/VisualObjectTracking@fe769c8, see docs/tracking.md): the shipped
   defaults, live (no gap filling), over the public detections without the frames, with them (GMC), and
   with the appearance cue on at 0.25 and 0.5; HOTA / IDF1 / ID switches by TrackEval and the tracker's ms
   per frame. And GMC's own error where the camera stands still (the truth is no motion): the fitted shift
   per frame with the detections masked, as the tracker does, and without.
3. The product on those whole sequences: ``edge-app track DIR --model ARTIFACT`` (the runtime's source,
   detector, tracker and counting, every frame) with the shipped detectors: the pedestrian SSDLite, and the
   COCO NanoDet (persons only) over the whole frame and tiled 3x2 + the whole frame (the tiling
   ../shared/notes/pretrained.md measured on the shared MOT17 frames, chosen before these runs). Tracking
   scored by TrackEval, counting by the benchmark's rule and lines (tracking_counts.py: the runtime's rule on
   a vertical and a horizontal line through the median true anchor), beside the public detections' rows.
Nothing is chosen here: the shipped settings, reported.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import tracking_counts as counting
import tracking_protocol as proto
from tracking_jobs import METRICS, ROOT, pool

DEMO = ROOT / "edge_app" / "demo"
# the product rows: (artifact, classes kept, tiles (cols, rows); (1, 1) = the whole frame)
PRODUCT = {"pedestrian SSDLite (person.onnx)": ("person.onnx", (), (1, 1)),
           "COCO NanoDet, persons (coco.onnx)": ("coco.onnx", ("person",), (1, 1)),
           "COCO NanoDet, persons, tiles 3x2 + whole frame": ("coco.onnx", ("person",), (3, 2))}

# the whole-sequence rows: the tracker's settings on top of the shipped defaults, and whether it sees the frames
ROWS = {"no frames (detections only)": ({}, False),
        "frames: camera motion (GMC)": ({}, True),
        "frames: GMC + appearance 0.25": ({"appearance_weight": 0.25}, True),
        "frames: GMC + appearance 0.5": ({"appearance_weight": 0.5}, True),
        "frames: appearance 0.25, no GMC": ({"appearance_weight": 0.25, "camera_motion": "off"}, True)}


def run(mot: Path, root: Path, workers: int) -> dict:
    out = {"benchmark": "tracking_frames", "rows": minis(mot)}
    if root.is_dir():
        out["sequences"] = whole(root, workers)
    return out


def whole_job(job: tuple[str, str, str]) -> tuple[str, str, dict]:
    """One row on one whole sequence (a worker process): track over the detections (with the images or
    not), then TrackEval."""
    from calibration.tracks import evaluate_tracks
    from edge_app.cli.track import run as track
    from edge_app.config.schema import TrackerConfig
    name, seq, out = job
    change, with_frames = ROWS[name]
    d = Path(seq)
    r = track(d / "det" / "det.txt", Path(out), settings=TrackerConfig(enabled=True, **change), interpolate_s=0.0,
              images=d / "img1" if with_frames else None)
    m = evaluate_tracks(d / "gt" / "gt.txt", out)
    return name, seq, {**{k: m[k] for k in METRICS}, "ms": r["ms_per_frame"], "without_image": r["frames_without_image"]}


def product_job(job: tuple[str, str, str]) -> tuple[str, str, dict]:
    """One shipped detector over one whole sequence through ``edge-app track DIR --model`` (a worker process)."""
    from calibration.tracks import evaluate_tracks
    from edge_app.cli.track import run_video
    from edge_app.config.schema import TrackerConfig
    from edge_app.frames.tiles import TileSpec
    name, seq, out = job
    artifact, keep, (cols, rows) = PRODUCT[name]
    r = run_video(Path(seq), DEMO / artifact, Path(out), [], [], TrackerConfig(enabled=True), interpolate_s=0.0,
                  keep=keep, tiles=TileSpec(cols, rows) if cols * rows > 1 else None)
    m = evaluate_tracks(Path(seq) / "gt" / "gt.txt", out)
    return name, seq, {**{k: m[k] for k in METRICS}, "fps": r["fps"], "dropped": r["dropped"]}


def still_camera_error(seq: Path) -> dict:
    """GMC's fitted shift per frame (px, full resolution) on a sequence whose camera stands still: with the
    frame's public detections masked (the tracker's way) and without."""
    import cv2

    from edge_app.analytics.motion import CameraMotion
    from edge_app.datasets.motchallenge import detections_by_frame, image_path, read_mot, read_seqinfo
    info = read_seqinfo(seq / "seqinfo.ini")
    dets = dict(detections_by_frame(read_mot(seq / "det" / "det.txt"), info.length))
    masked, bare = CameraMotion(), CameraMotion()
    shifts: dict[str, list[float]] = {"masked": [], "bare": []}
    for f in range(1, info.length + 1):
        image = cv2.imread(str(image_path(seq / "img1", f, info.image_ext)))
        for name, cm, boxes in (("masked", masked, dets[f].boxes), ("bare", bare, None)):
            warp = cm.estimate(image, boxes)
            shifts[name].append(0.0 if warp is None else float(np.hypot(*warp[:, 2])))
    return {k: {"median": float(np.median(v)), "p90": float(np.percentile(v, 90)), "max": float(np.max(v))}
            for k, v in shifts.items()}


def whole(root: Path, workers: int) -> dict:
    seqs = sorted(str(d) for d in root.iterdir() if (d / "img1").is_dir() and (d / "det" / "det.txt").is_file()
                  and (d / "gt" / "gt.txt").is_file())
    work = ROOT / "var" / "bench-tracking" / "frames"
    work.mkdir(parents=True, exist_ok=True)
    res: dict[str, dict[str, dict]] = {}
    t0 = time.time()
    jobs = [(name, seq, str(work / f"row{i}-{Path(seq).name}.txt")) for i, name in enumerate(ROWS) for seq in seqs]
    with pool(workers) as ex:
        for name, seq, m in ex.map(whole_job, jobs):
            res.setdefault(name, {})[Path(seq).name] = m
    print(f"whole sequences with frames: {len(seqs)}, {len(jobs)} runs, {time.time() - t0:.0f} s", flush=True)
    names = [Path(s).name for s in seqs]
    pjobs = [(name, seq, str(work / f"product{i}-{Path(seq).name}.txt")) for i, name in enumerate(PRODUCT)
             for seq in seqs if (DEMO / PRODUCT[name][0]).is_file()]
    with pool(workers) as ex:
        for name, seq, m in ex.map(product_job, pjobs):
            res.setdefault("product: " + name, {})[Path(seq).name] = m
        # counting, every row's tracks by the same rule and lines
        tracks = {name: f"row{i}" for i, name in enumerate(ROWS)}
        tracks.update({"product: " + name: f"product{i}" for i, name in enumerate(PRODUCT)})
        cjobs = [(name, seq, str(work / f"{stem}-{Path(seq).name}.txt"), [counting.RUNTIME_RULE])
                 for name, stem in tracks.items() if name in res for seq in seqs]
        counts: dict[str, dict[str, dict]] = {}
        for name, seq, c in ex.map(counting.count_job, cjobs):
            counts.setdefault(name, {})[Path(seq).name] = c[counting.rule_key(counting.RUNTIME_RULE)]
    print("| detections -> tracker (shipped defaults, live) | " + " | ".join(names)
          + " | IDSW | count error | ids ratio | true crossings | tracker ms/frame | fps |")
    print("|---" * (len(names) + 7) + "|")
    for name, r in res.items():
        cells = " | ".join(f"{100 * r[s]['HOTA']:.1f} / {100 * r[s]['IDF1']:.1f}" for s in names)
        c = counts[name]
        ms = f"{np.mean([r[s]['ms'] for s in names]):.2f}" if "ms" in r[names[0]] else ""
        fps = f"{np.mean([r[s]['fps'] for s in names]):.1f}" if "fps" in r[names[0]] else ""
        print(f"| {name} | {cells} | {sum(r[s]['IDSW'] for s in names)} | {100 * counting.share(c, names):.1f} % | "
              f"{sum(c[s]['track_ids'] for s in names) / max(1, sum(c[s]['true_ids'] for s in names)):.2f} | "
              f"{sum(c[s]['true'] for s in names)} | {ms} | {fps} |", flush=True)
    still = {}
    for s in seqs:  # GMC's own error: meaningful where the camera stands still (docs/tracking.md names which)
        still[Path(s).name] = e = still_camera_error(Path(s))
        print(f"{Path(s).name}: GMC's fitted shift per frame, px: detections masked median {e['masked']['median']:.2f}"
              f" p90 {e['masked']['p90']:.2f} max {e['masked']['max']:.1f}; unmasked median {e['bare']['median']:.2f}"
              f" p90 {e['bare']['p90']:.2f} max {e['bare']['max']:.1f}", flush=True)
    return {"results": res, "counts": counts, "still_camera_gmc": still}


def minis(mot: Path) -> list[dict]:
    """Where frames exist (the MOT17 *-mini sequences: their first 4-8 frames as JPEG, with ground truth):
    what camera-motion compensation and the colour appearance cue cost per frame, and what they give on
    real frames. GMC: the mean IoU of each true box's previous position (moved by the estimated camera
    motion, or not) with its current one, the motion model's starting point. Appearance: for each true box,
    whether the most similar box of the previous frame is the same person (rank-1), against chance."""
    import cv2

    from calibration.counts import truth_rows
    from edge_app.analytics.appearance import ColourHistogram
    from edge_app.analytics.motion import CameraMotion
    from edge_app.analytics.tracker import pair_iou
    rows = []
    for seq in proto.MOT17:
        d = mot / f"{seq}-mini"
        if not d.is_dir():
            continue
        g = truth_rows(d / "gt" / "gt.txt")
        images = sorted((d / "img1").glob("*.jpg"))
        cm, ch = CameraMotion(), ColourHistogram()
        gmc_ms, app_ms, iou_on, iou_off, hits, chance, n = [], [], [], [], 0, 0.0, 0
        prev = None
        for f, path in enumerate(images, 1):
            image = cv2.imread(str(path))
            sel = g.frames == f
            boxes = np.concatenate([g.boxes[sel, :2], g.boxes[sel, :2] + g.boxes[sel, 2:]], axis=1)
            ids = g.ids[sel]
            t0 = time.perf_counter()
            warp = cm.estimate(image, boxes)  # the objects masked, as the tracker masks its detections
            gmc_ms.append(1e3 * (time.perf_counter() - t0))
            t0 = time.perf_counter()
            emb = ch.embed(image, boxes)
            app_ms.append(1e3 * (time.perf_counter() - t0))
            if prev is not None:
                pboxes, pids, pemb = prev
                common, i, j = np.intersect1d(ids, pids, return_indices=True)
                if len(common):
                    before = pboxes[j]
                    moved = before.copy()
                    if warp is not None:
                        corners = np.concatenate([before[:, :2], before[:, 2:]], axis=0)
                        corners = corners @ warp[:, :2].T + warp[:, 2]
                        moved = np.concatenate([corners[:len(before)], corners[len(before):]], axis=1)
                    iou_off += pair_iou(before, boxes[i]).tolist()
                    iou_on += pair_iou(moved, boxes[i]).tolist()
                    best = np.argmax(emb[i] @ pemb.T, axis=1)
                    hits += int((pids[best] == common).sum())
                    chance += len(common) / len(pids)
                    n += len(common)
            prev = (boxes, ids, emb)
        rows.append({"sequence": seq, "frames": len(images), "size": list(image.shape[1::-1]),
                     "gmc_ms": float(np.median(gmc_ms[1:])), "appearance_ms": float(np.median(app_ms)),
                     "boxes_per_frame": float(len(g.frames) / max(len(images), 1)),
                     "iou_without_gmc": float(np.mean(iou_off)), "iou_with_gmc": float(np.mean(iou_on)),
                     "appearance_rank1": hits / max(n, 1), "appearance_chance": chance / max(n, 1)})
        r = rows[-1]
        print(f"{seq}-mini ({r['frames']} frames {r['size'][0]}x{r['size'][1]}): GMC {r['gmc_ms']:.1f} ms/frame, "
              f"box IoU to the next frame {r['iou_without_gmc']:.3f} -> {r['iou_with_gmc']:.3f} with it; appearance "
              f"{r['appearance_ms']:.1f} ms/frame at {r['boxes_per_frame']:.0f} boxes, rank-1 same person "
              f"{r['appearance_rank1']:.2f} (chance {r['appearance_chance']:.2f})", flush=True)
    return rows


