"""Plane geometry for lines and zones, vectorised over points (numpy only).

Image coordinates: x to the right, y down. For a line from A to B, ``side`` is negative on the left of
the direction A -> B as a person walking from A to B sees it (for a line drawn left to right: above it),
positive on the right, 0 on the line itself.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


ANCHORS = ("bottom_center", "center", "top_center")


def anchor_points(boxes: np.ndarray, anchor: str = "bottom_center") -> np.ndarray:
    """(N, 4) xyxy -> (N, 2) the point of each box that crosses lines and stands in zones."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    x = (b[:, 0] + b[:, 2]) / 2
    y = {"bottom_center": b[:, 3], "center": (b[:, 1] + b[:, 3]) / 2, "top_center": b[:, 1]}[anchor]
    return np.stack([x, y], axis=1)


def to_pixels(points: Sequence[Sequence[float]], units: str, width: int, height: int) -> np.ndarray:
    """(K, 2) points in 'pixels' or 'normalized' (0..1 of width and height) -> pixels."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    return p * np.array([width, height], np.float64) if units == "normalized" else p


def side(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 2) points -> (N,) sign of the cross product (B - A) x (P - A): -1 left, +1 right, 0 on it."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    d = b - a
    return np.sign(d[0] * (p[:, 1] - a[1]) - d[1] * (p[:, 0] - a[0]))


def line_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 2) points -> (N,) distance in pixels to the (infinite) line through A and B."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    d = b - a
    return np.abs(d[0] * (p[:, 1] - a[1]) - d[1] * (p[:, 0] - a[0])) / max(float(np.hypot(d[0], d[1])), 1e-12)


def crosses_segment(p0: np.ndarray, p1: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, 2) motions p0 -> p1 against the segment A-B -> (N,) bool: p0 and p1 strictly on opposite sides of
    the line, and the motion passes through the segment itself (not its extension; an end point counts)."""
    p0, p1 = np.asarray(p0, np.float64).reshape(-1, 2), np.asarray(p1, np.float64).reshape(-1, 2)
    s0, s1 = side(p0, a, b), side(p1, a, b)
    d = p1 - p0
    ta = np.sign(d[:, 0] * (a[1] - p0[:, 1]) - d[:, 1] * (a[0] - p0[:, 0]))
    tb = np.sign(d[:, 0] * (b[1] - p0[:, 1]) - d[:, 1] * (b[0] - p0[:, 0]))
    return (s0 * s1 < 0) & (ta * tb <= 0)


def inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N, 2) points, (K, 2) polygon -> (N,) bool, by ray casting (a point on an edge may fall either way)."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    poly = np.asarray(polygon, np.float64).reshape(-1, 2)
    x, y = p[:, 0:1], p[:, 1:2]
    x1, y1 = poly[:, 0][None], poly[:, 1][None]
    x2, y2 = np.roll(poly[:, 0], -1)[None], np.roll(poly[:, 1], -1)[None]
    straddles = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    return (straddles & (x < x_cross)).sum(axis=1) % 2 == 1


def self_intersects(polygon: np.ndarray) -> bool:
    """Whether two non-adjacent edges of a closed polygon (K, 2) cross or touch."""
    poly = np.asarray(polygon, np.float64).reshape(-1, 2)
    k = len(poly)
    edges = [(poly[i], poly[(i + 1) % k]) for i in range(k)]
    for i in range(k):
        for j in range(i + 1, k):
            if j == i + 1 or (i == 0 and j == k - 1):
                continue  # neighbours share a corner
            (a, b), (c, d) = edges[i], edges[j]
            s_c, s_d = side(np.array([c, d]), a, b)
            s_a, s_b = side(np.array([a, b]), c, d)
            if s_c * s_d <= 0 and s_a * s_b <= 0:
                return True
    return False


def problems(key: str, points: Sequence[Sequence[float]], units: str, width: int, height: int,
             polygon: bool, frame_from: str = "source.width x source.height") -> list[str]:
    """What is wrong with a line (two points) or a zone (a polygon) of the config, each naming ``key``."""
    out = []
    if any(len(p) != 2 for p in points):
        return [f"{key}.points = {[list(p) for p in points]}: expected [x, y] pairs"]
    if polygon and len(points) < 3:
        return [f"{key}.points: a zone needs at least 3 points, got {len(points)}"]
    if not polygon and len(points) != 2:
        return [f"{key}.points: a line is 2 points [[x1, y1], [x2, y2]], got {len(points)}"]
    px = to_pixels(points, units, width, height)
    limit = "0..1" if units == "normalized" else f"the {width}x{height} frame"
    outside = [list(p) for p, q in zip(points, px) if not (0 <= q[0] <= width and 0 <= q[1] <= height)]
    if outside:
        out.append(f"{key}.points: {outside} outside {limit} ({frame_from})")
    if not polygon and np.hypot(*(px[1] - px[0])) < 1:
        out.append(f"{key}.points = {[list(p) for p in points]}: a zero-length line")
    if polygon:
        area = 0.5 * abs(np.dot(px[:, 0], np.roll(px[:, 1], -1)) - np.dot(px[:, 1], np.roll(px[:, 0], -1)))
        if self_intersects(px):  # before the area: a bow tie's signed areas cancel
            out.append(f"{key}.points: the polygon crosses itself (list the corners in order around it)")
        elif area < 1:
            out.append(f"{key}.points: the polygon has no area")
    return out


def on_frame_border(polygon: np.ndarray, width: int, height: int, tol: float = 1.0) -> np.ndarray:
    """(K,) for each edge i (corner i to corner i+1) of a polygon (K, 2): whether it lies along the frame's
    border (within ``tol`` px). Such an edge is no boundary anyone crosses: the zone goes on past the frame."""
    p = np.asarray(polygon, np.float64).reshape(-1, 2)
    q = np.roll(p, -1, axis=0)
    out = np.zeros(len(p), bool)
    for axis, limit in ((0, 0.0), (0, float(width)), (1, 0.0), (1, float(height))):
        out |= (np.abs(p[:, axis] - limit) <= tol) & (np.abs(q[:, axis] - limit) <= tol)
    return out


def depth(points: np.ndarray, polygon: np.ndarray, border: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, 2) anchors -> (N,) signed distance in pixels to the zone's boundary: positive inside, negative
    outside. Anchors are clipped into the frame first (a box cut by the frame's edge has its anchor there)
    and edges along the frame's border (``border``, from on_frame_border) are not boundary, so an object
    standing at the bottom of a zone that reaches the frame's bottom is deep inside, not on an edge."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    p = np.clip(p, [0.5, 0.5], [width - 0.5, height - 0.5])
    poly = np.asarray(polygon, np.float64).reshape(-1, 2)
    a, b = poly[~border], np.roll(poly, -1, axis=0)[~border]
    if len(a):
        d = b - a                                               # (E, 2)
        rel = p[:, None, :] - a[None]                           # (N, E, 2)
        u = np.clip((rel * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-12), 0.0, 1.0)
        gap = rel - u[..., None] * d
        dist = np.sqrt((gap * gap).sum(-1)).min(axis=1)
    else:  # the whole frame
        dist = np.full(len(p), np.inf)
    return np.where(inside_polygon(p, poly), dist, -dist)
