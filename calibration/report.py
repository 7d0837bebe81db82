"""The calibration report: report.json (every number) and report.html (self-contained: tables and the
plots embedded as data URIs, readable offline), written atomically: the new report is assembled in a
temporary folder beside the old one and swapped in, so an interrupted run leaves the previous intact.
"""
from __future__ import annotations

import base64
import html
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``out`` (old one removed), on error it is dropped."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
    if isinstance(v, (list, tuple)):
        return html.escape(", ".join(map(str, v))) if v else "–"
    return html.escape(str(v))


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def write(folder: Path, report: dict[str, Any]) -> None:
    (folder / "report.json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    parts = [f"<h1>edge-vision calibration report</h1><p>{html.escape(report['created'])} · "
             f"{html.escape(report['machine'])} · data: {html.escape(str(report['data']))}</p>"]
    for m in report["models"]:
        parts.append(f"<h2>{html.escape(m['name'])} ({html.escape(m['task'])}, {m['images']} images)</h2>")
        parts.append("<h3>Precisions side by side</h3>")
        parts.append(table(m["precisions"], ["precision", "file", "metric", "value", "delta_points", "median_ms",
                                             "p90_ms", "size_mb", "speedup_vs_fp32", "within_tolerance"]))
        parts.append(f"<p>Recommended: <b>{html.escape(m['recommended'])}</b> ({html.escape(m['why'])})</p>")
        if m["task"] == "detection":
            parts.append("<h3>COCO metrics (recommended artifact)</h3>")
            parts.append(table([m["coco"]], list(m["coco"])))
            parts.append("<h3>Per class</h3>")
            parts.append(table(m["per_class"], ["class", "AP", "AP50", "AP_lecture50", "threshold", "source", "precision",
                                                "recall", "f1", "labels"]))
            parts.append(f"<p>Thresholds file: {html.escape(str(m['thresholds_file']))} "
                         f"(criterion {html.escape(m['criterion'])}, NMS IoU {m['nms_iou']})</p>")
            parts.append(table(m["nms_sweep"], ["nms_iou", "f1", "precision", "recall"]))
        else:
            parts.append("<h3>Segmentation metrics (recommended artifact)</h3>")
            parts.append(table([m["summary"]], list(m["summary"])))
            parts.append(table(m["per_class"], ["class", "iou", "dice", "precision", "recall"]))
            if m.get("baselines"):
                parts.append("<h3>What the network buys: classical baselines</h3>")
                parts.append(table(m["baselines"], ["method", "metric", "value", "polarity", "median_ms"]))
        for png in m.get("plots", []):
            parts.append(_img(folder / png))
    style = ("body{font:14px system-ui,sans-serif;margin:24px;max-width:1100px}table{border-collapse:collapse;"
             "margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
             "img{max-width:100%;display:block;margin:8px 0}")
    (folder / "report.html").write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>edge-vision "
                                        f"calibration</title><style>{style}</style></head><body>{''.join(parts)}"
                                        "</body></html>\n")
