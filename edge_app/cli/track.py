"""``edge-app track``: the runtime's tracker (``analytics.tracker``, the code the live pipeline runs) offline.

Two forms:
- ``edge-app track --detections det.txt [--seqinfo seqinfo.ini] [--frames img1/] --out tracks.txt``: over
  MOTChallenge detections, written as MOT tracks (``edge-app evaluate-tracks`` scores them). Without
  ``--frames`` there is no camera-motion compensation and no appearance; with the sequence's images
  (``000001.jpg``, ...) the tracker gets each frame as it does live. Time comes from the sequence's frame
  rate, so the lost buffer in seconds means what it means live.
- ``edge-app track VIDEO|DATASET --model ARTIFACT [--line NAME:x1,y1,x2,y2] [--zone NAME:x,y,...]
  --out tracks.txt``: the live runtime's source, detector, tracker and lines/zones over a recording
  (a video file, or a folder ``replay://`` reads: a MOTChallenge sequence with img1/, images with labels),
  every frame in order and none dropped (``source.realtime = false``), so a user can count a recording.
  Prints the counts as one JSON object (also ``--counts FILE``).
Both write the tracks file at the end, so unlike the live runtime they may look ahead: a track's gaps (an
object hidden, then found again) are filled with straight-line boxes (``--interpolate-s``; 0 = the live
tracker's output as it is). The counts are the live rule's either way.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..analytics.interpolate import fill_gaps
from ..datasets.motchallenge import (MotFormatError, detections_by_frame, image_path, read_mot, read_seqinfo,
                                     write_tracks)
from ..analytics.tracker import Tracker
from ..config.schema import TrackerConfig
from ..frames.tiles import TileSpec, add_tile_flags, spec_from_flags
from .progress import add_progress_flag, progress
from .errors import as_flags, bool_arg, fail

log = logging.getLogger(__name__)

# Offline, a track's gaps (hidden, then found again) are filled up to this long: every fold of the
# leave-one-sequence-out chose it (README, "Tracking, lines and zones"); the live runtime cannot look ahead.
INTERPOLATE_S = 5.0


def settings_args(p: argparse.ArgumentParser) -> None:
    """--high-score, --min-hits, ... one flag per [models.NAME.tracker] key, with the config's doc and
    default (the config schema is the one definition of the tracker's settings)."""
    for f in fields(TrackerConfig):
        if f.name == "enabled":
            continue
        flag = "--" + f.name.replace("_", "-")
        doc = f"{f.metadata.get('doc', '')} (default {f.default})".replace("%", "%%")
        if f.type in (str, "str"):
            p.add_argument(flag, default=f.default, choices=f.metadata.get("choices"), help=doc)
        elif f.type in (bool, "bool"):
            p.add_argument(flag, type=bool_arg, default=f.default, metavar="BOOL", help=doc)
        else:
            p.add_argument(flag, type=int if f.type in (int, "int") else float, default=f.default, help=doc)


def settings_from(a: argparse.Namespace) -> TrackerConfig:
    """The tracker flags as the config's [models.NAME.tracker] table, checked by the config's own rules (a
    gate above 1, a negative buffer, ... -> ValueError naming the flag and what was expected)."""
    from ..config.loader import parse
    data = {f.name: getattr(a, f.name) for f in fields(TrackerConfig) if f.name != "enabled"}
    settings, problems = parse(TrackerConfig, {"enabled": True, **data})
    if problems:
        raise ValueError(as_flags(problems))
    return settings


def run(detections: Path, out: Path, seqinfo: Path | None = None, settings: TrackerConfig | None = None,
        frame_rate: float | None = None, show_progress: bool = False,
        interpolate_s: float = INTERPOLATE_S, images: Path | None = None) -> dict[str, float]:
    """Track MOT detections into MOT tracks; ``interpolate_s``: fill gaps inside a track up to this long
    with straight-line boxes (offline look-ahead; 0 = the live tracker's output as it is). ``images``: the
    sequence's frames (MOTChallenge naming, ``000001.jpg``), handed to the tracker as live (camera motion,
    appearance); a frame whose image is missing or unreadable is tracked without it, counted
    (``frames_without_image``). ``ms_per_frame`` is the tracker's time, image reading left out."""
    rows = read_mot(detections)
    info_path = seqinfo or (detections.parent.parent / "seqinfo.ini")
    info = read_seqinfo(info_path) if info_path.is_file() else None
    fps = frame_rate or (info.frame_rate if info else 30.0)
    length = info.length if info else None
    tracker = Tracker(settings)
    frames = []
    seconds, without = 0.0, 0
    per_frame = detections_by_frame(rows, length)
    read = _image_reader(images, info.image_ext if info else ".jpg", len(per_frame)) if images is not None else None
    for f, det in progress(per_frame, len(per_frame), "track", show_progress):
        image = read(f) if read is not None else None
        without += read is not None and image is None
        t0 = time.perf_counter()
        frames.append((f, tracker.update(det, (f - 1) / fps, image)))
        seconds += time.perf_counter() - t0
    frames = fill_gaps(frames, int(round(interpolate_s * fps)))
    write_tracks(out, frames)
    return {"frames": len(frames), "tracks": tracker.confirmed_total,
            "ms_per_frame": 1e3 * seconds / max(len(frames), 1), "frames_without_image": without}


def _image_reader(folder: Path, ext: str, count: int) -> Callable[[int], np.ndarray | None]:
    """frame number -> its image (H, W, 3) BGR uint8 from ``folder`` (``000001<ext>``, ...), None when missing
    or unreadable (logged once per kind). The folder must hold the first frame: a wrong folder is an error."""
    import cv2
    first = image_path(folder, 1, ext)
    if count and not first.is_file():
        raise ValueError(f"--frames {folder}: no {first.name} (expected the sequence's images, MOTChallenge "
                         f"naming 000001{ext}, 000002{ext}, ...)")
    warned: set[str] = set()

    def read(f: int) -> np.ndarray | None:
        path = image_path(folder, f, ext)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
        if image is None:
            kind = "missing" if not path.is_file() else "unreadable"
            if kind not in warned:
                warned.add(kind)
                log.warning("%s: %s image, frame %d tracked without it (counted in frames_without_image)", path,
                            kind, f)
        return image
    return read


def _video_info(path: Path) -> tuple[int, int, float, int]:
    """(width, height, fps, frames) of a video file, read from its header (OpenCV's demuxer)."""
    import cv2
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ValueError(f"{path}: not a video this machine can open")
        return (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
                float(cap.get(cv2.CAP_PROP_FPS) or 30.0), int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
    finally:
        cap.release()


def _source_of(path: Path, fps: float | None) -> tuple[Any, int, int, float, int]:
    """The runtime's source for a recording, every frame (realtime off), once (no loop)."""
    from ..config.schema import SourceConfig
    from ..sources import open_source
    if path.is_dir():
        from ..sources.replay import ReplaySource
        info = read_seqinfo(path / "seqinfo.ini") if (path / "seqinfo.ini").is_file() else None
        rate = fps or (info.frame_rate if info else 30.0)
        src = ReplaySource(f"replay://{path.resolve()}", path, fps=rate, loop=False, realtime=False)
        image = src.frame_of(0)[0]
        return src, image.shape[1], image.shape[0], rate, len(src.dataset.samples)
    if not path.is_file():
        raise ValueError(f"{path}: no such video file or dataset folder")
    width, height, rate, count = _video_info(path)
    rate = fps or rate
    settings = SourceConfig(uri=f"file://{path.resolve()}", width=width, height=height, fps=rate, loop=False,
                            realtime=False)
    return open_source(settings), width, height, rate, count


def run_video(video: Path, model: Path, out: Path, lines: list[str], zones: list[str],
              settings: TrackerConfig | None = None, thresholds: Path | None = None, fps: float | None = None,
              anchor: str = "bottom_center", show_progress: bool = False,
              interpolate_s: float = INTERPOLATE_S, keep: tuple[str, ...] = (),
              tiles: TileSpec | None = None) -> dict[str, Any]:
    """Detector, tracker and counting of the live runtime over every frame of a recording; MOT tracks to
    ``out`` (their gaps filled up to ``interpolate_s``: the file is written at the end, so it may look
    ahead; the counts are the live rule's, frame by frame); returns the counts (Analytics.snapshot()) with
    frame and timing figures. keep: the detector's classes tracked (the config's ``keep``; empty: all);
    tiles: its TileSpec (the config's ``tiles``; None: the whole frame)."""
    from ..analytics.counting import Analytics
    from ..config.shapes import parse_line, parse_zone
    from ..config.schema import AnalyticsConfig
    from ..inference.models import ModelSpec, open_model
    if thresholds is None and model.with_suffix(".thresholds.json").is_file():
        thresholds = model.with_suffix(".thresholds.json")  # calibration's, beside the artifact
    if keep:  # named by the flag, before the model loads: a typo'd class would otherwise track nothing
        from ..core.artifact import ArtifactError, read_meta
        try:
            classes = read_meta(model, verify_checksum=False).classes
        except ArtifactError as exc:
            raise ValueError(f"{exc}") from None
        unknown = [c for c in keep if c not in classes]
        if unknown:
            raise ValueError(f"--keep {' '.join(unknown)}: not a class of {model.name} (expected some of: "
                             f"{', '.join(classes[:10])}{', ...' if len(classes) > 10 else ''})")
    detector = open_model(ModelSpec("detector", "detector", model, thresholds_file=thresholds, keep=tuple(keep),
                                    tiles=tiles or TileSpec()))
    source, width, height, rate, count = _source_of(video, fps)
    shapes = AnalyticsConfig(anchor=anchor,
                             lines=tuple(parse_line(v, width, height, frame_from=str(video)) for v in lines),
                             zones=tuple(parse_zone(v, width, height, frame_from=str(video)) for v in zones))
    analytics = Analytics(shapes, {"detector": settings or TrackerConfig(enabled=True)}, width, height)
    frames: list[tuple[int, Any]] = []
    t0 = time.perf_counter()
    source.start()
    bar = progress(iter(int, 1), count or None, "track", show_progress)  # a bar advanced by hand
    try:
        while True:
            frame = source.read(0.5)
            if frame is None:
                if not source.thread_alive() and source.slot.peek() is None:
                    break  # the file ended and every frame was taken
                continue
            result = detector.predict(frame.image)
            tracks = analytics.update([result], frame.pts, frame.image)
            frames.append((len(frames) + 1, tracks[result.name]))
            if hasattr(bar, "update"):
                bar.update(1)
    finally:
        source.stop()
        if hasattr(bar, "close"):
            bar.close()
    if source.stats.last_error and not frames:
        raise ValueError(f"{video}: {source.stats.last_error}")
    seconds = time.perf_counter() - t0
    write_tracks(out, fill_gaps(frames, int(round(interpolate_s * rate))))
    analytics.end_of_stream()
    snap = analytics.snapshot()
    return {"frames": len(frames), "dropped": int(source.stats.dropped), "fps": len(frames) / max(seconds, 1e-9),
            "tracks": analytics.trackers["detector"].confirmed_total, "size": [width, height], "frame_rate": rate,
            "lines": snap["lines"], "zones": snap["zones"], "out": str(out)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edge-app track", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", nargs="?", type=Path, help="a video file, or a dataset folder (MOT sequence, "
                   "images with labels); with --model")
    p.add_argument("--detections", type=Path, help="MOTChallenge det.txt (instead of a video)")
    p.add_argument("--frames", type=Path, metavar="DIR", help="with --detections: the sequence's images (img1/, "
                   "000001.jpg ...), so the tracker compensates the camera's motion and, when on, uses appearance")
    p.add_argument("--model", type=Path, help="the detector artifact (ONNX) run on every frame of INPUT")
    p.add_argument("--thresholds", type=Path, help="calibration's thresholds JSON (default: ARTIFACT's "
                   ".thresholds.json beside it, when there)")
    p.add_argument("--line", action="append", default=[], metavar="NAME:x1,y1,x2,y2",
                   help="a counting line, pixels or 0..1 of the frame (repeatable)")
    p.add_argument("--zone", action="append", default=[], metavar="NAME:x1,y1,x2,y2,x3,y3,...",
                   help="a zone polygon, pixels or 0..1 (repeatable)")
    p.add_argument("--keep", action="append", default=[], metavar="CLASS",
                   help="with --model: track and count only this class of the detector (repeatable; default all)")
    add_tile_flags(p)
    p.add_argument("--anchor", default="bottom_center", choices=("bottom_center", "center", "top_center"))
    p.add_argument("--counts", type=Path, help="also write the counts JSON here")
    p.add_argument("--seqinfo", type=Path, help="seqinfo.ini (default: beside det/; gives frame rate and length)")
    p.add_argument("--out", required=True, type=Path, help="MOT-format tracks to write")
    p.add_argument("--frame-rate", type=float, help="frames per second (default: seqinfo's or the video's, else 30)")
    p.add_argument("--interpolate-s", type=float, default=INTERPOLATE_S, help="fill each track's gaps in --out up to "
                   f"this many seconds with straight-line boxes (offline look-ahead; 0 = as live; default {INTERPOLATE_S})")
    settings_args(p)
    add_progress_flag(p)
    a = p.parse_args(argv)
    if (a.detections is None) == (a.input is None):
        p.error("give either --detections det.txt or a VIDEO|DATASET with --model")
    if a.detections is not None and (a.keep or a.tiles):
        p.error("--keep and --tiles go with --model (the detector's settings)")
    if a.frames is not None and a.detections is None:
        p.error("--frames goes with --detections (a VIDEO|DATASET brings its own frames)")
    if a.input is not None and a.model is None:
        p.error(f"{a.input}: --model ARTIFACT is needed to detect objects in it")
    try:
        if a.detections is not None:
            r = run(a.detections, a.out, a.seqinfo, settings_from(a), a.frame_rate, not a.no_progress, a.interpolate_s,
                    a.frames)
            missing = f", {r['frames_without_image']} without an image" if r["frames_without_image"] else ""
            print(f"{a.out}: {r['tracks']} tracks over {r['frames']} frames{missing}, "
                  f"{r['ms_per_frame']:.2f} ms per frame")
            return 0
        result = run_video(a.input, a.model, a.out, a.line, a.zone, settings_from(a), a.thresholds, a.frame_rate,
                           a.anchor, not a.no_progress, a.interpolate_s, tuple(a.keep), spec_from_flags(a))
    except (MotFormatError, ValueError) as exc:
        return fail("track", f"{exc}")
    except Exception as exc:  # a model that cannot load names itself (ModelError)
        if type(exc).__name__ != "ModelError":
            raise
        return fail("track", f"{exc}")
    text = json.dumps(result)
    if a.counts:
        from ..core.artifact import write_atomic
        write_atomic(a.counts, text + "\n")
    print(text)
    return 0
