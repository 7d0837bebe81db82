"""Tiled inference (SAHI; DeepStream's nvdspreprocess ROIs): a frame cut into overlapping tiles, each
tile through the network at its full input size (small objects become big enough), optionally the whole
frame too, only where a region of interest needs it; the detections merged in the decoder
(``decoders.merge``).

A spec is per model (``tiles = [cols, rows]``, ``overlap``, ``full_frame``, ``roi``); the same spec runs
live, in calibration, in evaluation and in INT8 calibration (the crops are the calibration images), so
thresholds are chosen for what runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .preprocess import Letterbox, Preprocessor

MIN_TILE = 32        # pixels: a tile smaller than this holds nothing a detector can find
MAX_OVERLAP = 0.9


@dataclass(frozen=True)
class TileSpec:
    """cols x rows tiles overlapping by ``overlap`` (a fraction of a tile's width / height); ``full_frame``:
    the whole frame as one more image; ``roi``: polygons in normalised frame coordinates (0..1) — only
    tiles touching one run, and only detections whose box centre lies in one are kept (() = everywhere)."""

    cols: int = 1
    rows: int = 1
    overlap: float = 0.2
    full_frame: bool = True
    roi: tuple[tuple[tuple[float, float], ...], ...] = ()

    @property
    def tiled(self) -> bool:
        return self.cols * self.rows > 1 or bool(self.roi)

    @property
    def setting(self) -> str:
        """What a precision was gated and calibrated on, as written into build's table and calibrate's
        recommendation: "whole frame", or the tiles (an INT8 calibrated on whole frames may not fit tiles)."""
        return self.describe() if self.tiled else "whole frame"

    def describe(self) -> str:
        return (f"{self.cols}x{self.rows} tiles, overlap {self.overlap:g}" + (" + full frame" if self.full_frame
                                                                              else "")
                + (f", {len(self.roi)} roi" if self.roi else ""))


def spec_problems(key: str, cols: int, rows: int, overlap: float, roi: list, width: int, height: int) -> list[str]:
    """What is wrong with a tiles spec for frames of width x height, each naming ``key`` (the config's
    models.NAME) and what was expected; roi points are in pixels of that frame here."""
    out = []
    if not 0 <= overlap <= MAX_OVERLAP:
        out.append(f"{key}.overlap = {overlap}: expected a fraction in [0, {MAX_OVERLAP}]")
    else:
        tw, th = tile_size(width, height, cols, rows, overlap)
        if tw < MIN_TILE or th < MIN_TILE:
            out.append(f"{key}.tiles = [{cols}, {rows}]: tiles of {tw:.0f}x{th:.0f} px on {width}x{height} frames; "
                       f"expected tiles of at least {MIN_TILE}x{MIN_TILE} px (fewer columns / rows)")
    for k, poly in enumerate(roi):
        pts = np.asarray(poly, np.float64).reshape(-1, 2) if len(poly) and all(len(p) == 2 for p in poly) else None
        if pts is None or len(pts) < 3:
            out.append(f"{key}.roi[{k}]: expected a polygon of at least 3 [x, y] points")
            continue
        outside = [list(p) for p in pts.tolist() if not (0 <= p[0] <= width and 0 <= p[1] <= height)]
        if outside:
            out.append(f"{key}.roi[{k}]: points {outside} outside the {width}x{height} frame")
    return out


def tile_size(width: int, height: int, cols: int, rows: int, overlap: float) -> tuple[float, float]:
    """A tile's width and height: ``cols`` tiles overlapping by ``overlap`` cover the width exactly."""
    return width / (cols - (cols - 1) * overlap), height / (rows - (rows - 1) * overlap)


def tile_rects(width: int, height: int, spec: TileSpec) -> np.ndarray:
    """(T, 4) int xyxy of the tiles to run on a width x height frame, row by row, the full frame last; tiles
    touching no roi polygon are left out (a tile touches one when the polygon's box meets it)."""
    tw, th = tile_size(width, height, spec.cols, spec.rows, spec.overlap)
    rects = []
    for r in range(spec.rows):
        y0 = 0 if spec.rows == 1 else round(r * (height - th) / (spec.rows - 1))
        for c in range(spec.cols):
            x0 = 0 if spec.cols == 1 else round(c * (width - tw) / (spec.cols - 1))
            rects.append((x0, y0, min(width, round(x0 + tw)), min(height, round(y0 + th))))
    out = np.array(rects, np.int64).reshape(-1, 4)
    if spec.cols * spec.rows == 1:
        out = out[:0]  # one "tile" is the full frame
    if spec.roi and len(out):
        boxes = np.array([[min(p[0] for p in poly) * width, min(p[1] for p in poly) * height,
                           max(p[0] for p in poly) * width, max(p[1] for p in poly) * height] for poly in spec.roi])
        touch = ((out[:, None, 0] < boxes[None, :, 2]) & (out[:, None, 2] > boxes[None, :, 0])
                 & (out[:, None, 1] < boxes[None, :, 3]) & (out[:, None, 3] > boxes[None, :, 1])).any(axis=1)
        out = out[touch]
    if spec.full_frame or len(out) == 0:
        out = np.concatenate([out, np.array([[0, 0, width, height]], np.int64)])
    return out


@dataclass(frozen=True)
class Tiled:
    """The geometry of one frame's tiles: what the decoder needs to merge them. ``tiles``: one Letterbox
    per image of the batch (offset = the tile's corner); ``rects``: (T, 4) the tiles in frame pixels;
    ``roi``: polygons in frame pixels."""

    tiles: tuple[Letterbox, ...]
    rects: np.ndarray
    frame_size: tuple[int, int]
    roi: tuple[np.ndarray, ...] = ()


def prepare(pre: Preprocessor, frame: np.ndarray, spec: TileSpec) -> tuple[np.ndarray, Tiled]:
    """(H, W, 3) frame -> ((T, 3, h, w) float32, Tiled): each tile preprocessed as an image of its own."""
    crops, rects = crops_of(frame, spec)
    xs, geos = [], []
    for crop, (x0, y0, _, _) in zip(crops, rects.tolist()):
        x, geo = pre(crop)
        xs.append(x)
        geos.append(Letterbox(geo.scale_x, geo.scale_y, geo.pad_x, geo.pad_y, geo.frame_size, (float(x0), float(y0))))
    h, w = frame.shape[:2]
    roi = tuple(np.asarray(p, np.float64).reshape(-1, 2) * np.array([w, h]) for p in spec.roi)
    return np.concatenate(xs, axis=0), Tiled(tuple(geos), rects, (w, h), roi)


def crops_of(frame: np.ndarray, spec: TileSpec) -> tuple[list[np.ndarray], np.ndarray]:
    """The tiles of a frame as images (views) and their rectangles (the INT8 calibrator's images too)."""
    h, w = frame.shape[:2]
    rects = tile_rects(w, h, spec)
    return [frame[y0:y1, x0:x1] for x0, y0, x1, y1 in rects.tolist()], rects


def add_tile_flags(parser: Any) -> None:
    """--tiles / --overlap / --no-full-frame: a bare artifact (build, calibrate --artifact) run tiled as the
    config's model will be."""
    parser.add_argument("--tiles", help="COLS,ROWS: run tiled, as the model's config says (e.g. 3,2)")
    parser.add_argument("--overlap", type=float, default=0.2, help="tile overlap, a fraction of a tile (0..0.9)")
    parser.add_argument("--no-full-frame", action="store_true", help="with --tiles: not the whole frame too")


def spec_from_flags(args: Any) -> TileSpec:
    if not getattr(args, "tiles", None):
        return TileSpec()
    try:
        cols, rows = (int(v) for v in args.tiles.split(","))
    except ValueError:
        raise SystemExit(f"--tiles {args.tiles!r}: expected COLS,ROWS (e.g. 3,2)") from None
    if cols < 1 or rows < 1 or not 0 <= args.overlap <= MAX_OVERLAP:
        raise SystemExit(f"--tiles {args.tiles} --overlap {args.overlap}: expected cols, rows >= 1 and an overlap in "
                         f"[0, {MAX_OVERLAP}]")
    return TileSpec(cols, rows, args.overlap, not args.no_full_frame)
