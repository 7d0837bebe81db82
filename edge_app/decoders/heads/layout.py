"""Which head family an ONNX detector's outputs are, from their shapes alone (``edge-app import
model.onnx --head auto``): each family's rule is tried; one fit is the answer with the reason, none or
several is a LayoutError naming the shapes and the families tried.

The anchor-point counts tie a dense output to the input size: strides 8, 16, 32 give
sum(ceil(H/s) ceil(W/s)) points (8400 at 640x640); YOLOv5 has 3 anchors at each; GFL heads may add
stride 64. ``classes``: the class count when known (``--classes``/``--names`` or the file's own names),
which settles layouts that only differ by it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STRIDE_SETS = ((8, 16, 32), (8, 16, 32, 64))


class LayoutError(ValueError):
    pass


@dataclass(frozen=True)
class Layout:
    head: str
    outputs: dict[str, str]           # role -> output name
    params: dict[str, Any] = field(default_factory=dict)
    classes: int = 0
    reason: str = ""


def points(h: int, w: int, strides: tuple[int, ...]) -> int:
    return sum(-(-h // s) * -(-w // s) for s in strides)


def _dense(shape: tuple[int, ...]) -> bool:
    return len(shape) == 3 and all(isinstance(d, int) and d > 0 for d in shape[1:])


def _yolo(outs: dict[str, tuple], h: int, w: int, c: int | None) -> list[Layout]:
    if len(outs) != 1:
        return []
    (name, shape), = outs.items()
    if not _dense(shape):
        return []
    n8 = points(h, w, (8, 16, 32))
    found = []
    if shape[2] == n8 and shape[1] > 4 and (c is None or shape[1] == 4 + c):
        found.append(Layout("yolo", {"output": name}, {"layout": "anchor-free"}, shape[1] - 4,
                            f"one output {list(shape)}: 4 box + {shape[1] - 4} class channels over {n8} anchor "
                            f"points of strides 8/16/32 at {w}x{h} (YOLOv8/v11/v5u, anchor-free)"))
    if shape[1] == 3 * n8 and shape[2] > 5 and (c is None or shape[2] == 5 + c):
        found.append(Layout("yolo", {"output": name}, {"layout": "anchor-based"}, shape[2] - 5,
                            f"one output {list(shape)}: {shape[1]} = 3 anchors x {n8} points of strides 8/16/32 "
                            f"at {w}x{h}, rows of 4 box + objectness + {shape[2] - 5} classes (YOLOv5)"))
    return found


def _end_to_end(outs: dict[str, tuple], h: int, w: int, c: int | None) -> list[Layout]:
    if len(outs) != 1:
        return []
    (name, shape), = outs.items()
    if not _dense(shape) or shape[2] != 6 or shape[1] in (points(h, w, (8, 16, 32)), 3 * points(h, w, (8, 16, 32))):
        return []
    return [Layout("yolo-e2e", {"output": name}, {}, c or 0,
                   f"one output {list(shape)}: {shape[1]} rows of x1, y1, x2, y2, score, class (YOLOv10/YOLO26 "
                   "end-to-end, no NMS)"),
            Layout("detr", {"output": name}, {"layout": "topk"}, c or 0,
                   f"one output {list(shape)}: the top {shape[1]} of queries x classes as cx, cy, w, h "
                   "(normalised), score, class (ultralytics' RT-DETR export, no NMS)")]


def _detr(outs: dict[str, tuple], h: int, w: int, c: int | None) -> list[Layout]:
    dense = {k: s for k, s in outs.items() if _dense(s)}
    if len(outs) == 1:
        (name, shape), = outs.items()
        dense_points = {points(h, w, (8, 16, 32)), 3 * points(h, w, (8, 16, 32))}
        if _dense(shape) and shape[2] > 6 and not dense_points & {shape[1], shape[2]} and (c is None or shape[2] == 4 + c):
            return [Layout("detr", {"output": name}, {"layout": "joined"}, shape[2] - 4,
                           f"one output {list(shape)}: {shape[1]} queries of cx, cy, w, h + {shape[2] - 4} class "
                           "scores (DETR style)")]
        return []
    if len(dense) != 2:
        return []
    boxes = [k for k, s in dense.items() if s[2] == 4]
    other = [k for k in dense if k not in boxes]
    if len(boxes) != 1 or len(other) != 1 or dense[boxes[0]][1] != dense[other[0]][1]:
        return []
    q, k = dense[boxes[0]][1], dense[other[0]][2]
    if c is not None and k not in (c, c + 1):
        return []
    found = [Layout("detr", {"boxes": boxes[0], "scores": other[0]}, {"layout": "split", "score": "logits"}, k,
                    f"two outputs {list(dense[boxes[0]])} and {list(dense[other[0]])}: {q} queries' boxes "
                    f"(cx, cy, w, h normalised) and {k} class logits (RT-DETR / D-FINE / RF-DETR, no NMS)")]
    found.append(Layout("ssd", {"boxes": boxes[0], "scores": other[0]}, {}, k,
                        f"two outputs {list(dense[boxes[0]])} and {list(dense[other[0]])}: {q} decoded boxes "
                        "(x1, y1, x2, y2 pixels) and their class scores (SSD style, decoded in the graph)"))
    return found


def _gfl(outs: dict[str, tuple], h: int, w: int, c: int | None) -> list[Layout]:
    dense = {k: s for k, s in outs.items() if _dense(s)}
    if len(dense) != len(outs) or len(dense) < 2:
        return []
    widths = sorted({s[2] for s in dense.values()})
    if len(widths) != 2:
        return []
    for strides in STRIDE_SETS:
        levels = [-(-h // s) * -(-w // s) for s in strides]
        for cls_w, reg_w in (widths, widths[::-1]):
            if reg_w % 4 or reg_w // 4 < 2 or (c is not None and cls_w != c):
                continue
            by_level: dict[int, dict[str, str]] = {}
            for name, s in dense.items():
                by_level.setdefault(s[1], {})["scores" if s[2] == cls_w else "bins"] = name
            if len(dense) == 2 and sum(levels) in by_level and len(by_level[sum(levels)]) == 2:
                roles = by_level[sum(levels)]
                per_level = None
            elif sorted(by_level) == sorted(levels) and all(len(v) == 2 for v in by_level.values()):
                roles, per_level = {}, [by_level[n] for n in levels]  # type: ignore[assignment]
            else:
                continue
            params = {"strides": list(strides), "reg_max": reg_w // 4 - 1, "sides": "ltrb", "offset": 0.5}
            if per_level is not None:
                params["levels"] = per_level  # the importer concatenates them in the graph
            return [Layout("gfl", roles, params, cls_w,
                           f"outputs {[list(s) for s in dense.values()]}: {cls_w} class scores and 4 x {reg_w // 4} "
                           f"distance bins per anchor point, {levels} points for strides {list(strides)} at {w}x{h} "
                           "(GFL: NanoDet / PicoDet)")]
    return []


RULES = {"yolo": _yolo, "yolo-e2e/detr (N, 6)": _end_to_end, "detr": _detr, "gfl": _gfl}


def detect(outputs: dict[str, tuple], input_size: tuple[int, int], classes: int | None = None,
           head: str = "auto") -> Layout:
    """The family of these outputs ({name: shape}); ``head`` other than "auto" keeps only that family's
    readings (settles an ambiguity). LayoutError when none or several fit."""
    h, w = input_size
    found = [lay for rule in RULES.values() for lay in rule(outputs, h, w, classes)]
    if head != "auto":
        found = [lay for lay in found if lay.head == head]
    shapes = ", ".join(f"{k} {list(v)}" for k, v in outputs.items())
    tried = "ssd, gfl, yolo (anchor-free, anchor-based), yolo-e2e, detr (topk, joined, split)"
    if not found:
        raise LayoutError(f"outputs {shapes} at input {w}x{h}{f' with {classes} classes' if classes else ''} fit no "
                          f"{'family' if head == 'auto' else repr(head) + ' layout'} (tried: {tried})")
    if len(found) > 1:
        raise LayoutError(f"outputs {shapes} fit several families: "
                          + "; ".join(f"{lay.head}: {lay.reason}" for lay in found) + ". Name one with --head")
    return found[0]
