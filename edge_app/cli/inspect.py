"""``edge-app inspect ARTIFACT [--json]``: what an artifact says about itself, and what lies beside it.

Metadata (task, classes, input, colour order and normalisation, score semantics), the precision variants
present (checksums verified, stale ones named) with build's precision table, calibrate's recommendation,
the thresholds file and whether it was chosen for this very model, validation metrics, training data,
export parity, and TensorRT engines with their manifests (fresh / stale / missing).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..core.artifact import PRECISIONS, ArtifactError, read_meta
from ..inference import artifacts
from .errors import fail


def _variants(fp32: Path, sha: str) -> list[dict[str, Any]]:
    out = []
    for precision in PRECISIONS:
        path = artifacts.variant_path(fp32, precision)
        if not path.is_file():
            continue
        entry: dict[str, Any] = {"precision": precision, "file": path.name, "size_mb": round(path.stat().st_size / 2**20, 2)}
        try:
            meta = read_meta(path)
            entry["state"] = "stale (built from another version)" if artifacts.stale_variant(meta, sha) else "ok"
            if "quantization" in meta.extra:
                q = meta.extra["quantization"]
                entry["quantization"] = {k: q.get(k) for k in ("recipe", "calibration", "images", "kept_in_float")}
        except ArtifactError as exc:
            entry["state"] = f"unusable: {exc}"
        out.append(entry)
    return out


def _thresholds(fp32: Path, sha: str) -> dict[str, Any] | None:
    path = fp32.with_name(f"{fp32.stem}.thresholds.json")
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        return {"file": path.name, "state": f"unreadable: {exc}"}
    made_for = data.get("onnx_sha256")
    state = "chosen for another version of the model: run edge-app calibrate again"
    if made_for == sha:
        state = "matches this model"
    else:
        # calibrate picks thresholds on the precision it recommends: the file then names that variant
        for precision in PRECISIONS:
            variant = artifacts.variant_path(fp32, precision)
            try:
                if variant.is_file() and read_meta(variant).onnx_sha256 == made_for:
                    state = f"matches its {precision} variant ({variant.name}), the one calibrate chose them on"
                    break
            except ArtifactError:
                continue
    return {"file": path.name, "state": state,
            "rule": data.get("rule", "score > threshold (older file)"), "criterion": data.get("criterion"),
            "nms_iou": data.get("nms_iou"), "score_thresholds": data.get("score_thresholds"),
            "expected": data.get("expected"), "precision": data.get("precision")}


def _engines(fp32: Path, engine_dirs: list[Path]) -> list[dict[str, Any]]:
    from ..backends.tensorrt import device_info

    device = device_info()
    out = []
    for precision in ("fp32", "fp16", "int8"):
        for folder in engine_dirs:
            engine, manifest = artifacts.engine_paths(folder, fp32, precision)
            if engine.is_file():
                check = artifacts.check_engine(engine, manifest, fp32, device)
                state = "fresh" if check.usable and device else ("stale" if not check.usable else
                                                                  "checksum ok (no TensorRT here to check the device)")
                out.append({"precision": precision, "file": str(engine), "state": state, "reason": check.reason})
                break
        else:
            out.append({"precision": precision, "state": "missing"})
    return out


def describe(fp32: Path, engine_dir: Path | None = None) -> dict[str, Any]:
    meta = read_meta(fp32)  # checksum verified: a stale sidecar is an error naming both files
    extra = meta.extra
    training = (extra.get("training") or {}).get("config") or {}
    rec_path = artifacts.recommendation_path(fp32)
    recommendation = json.loads(rec_path.read_text()) if rec_path.is_file() else None
    dirs = [engine_dir] if engine_dir else [Path("var/engines"), fp32.parent]
    return {
        "artifact": str(fp32), "onnx_sha256": meta.onnx_sha256, "model": meta.model, "task": meta.task,
        "classes": list(meta.classes), "input": {"name": meta.input_name, "size_hw": list(meta.input_size),
                                                 "layout": meta.layout, "color": meta.color, "mean": list(meta.mean),
                                                 "std": list(meta.std), "resize": meta.resize},
        "score": meta.score, "background": meta.background, "ignore_index": meta.ignore_index,
        "variants": _variants(fp32, meta.onnx_sha256), "precision_table": extra.get("precision_table"),
        "recommendation": recommendation, "thresholds": _thresholds(fp32, meta.onnx_sha256),
        "validation": extra.get("validation"), "parity": extra.get("export"),
        "training": {k: training.get(k) for k in ("model", "data", "split", "val_data", "val_fraction", "epochs",
                                                  "weights", "transfer", "synthetic_size", "seed") if k in training},
        "training_data": (extra.get("training") or {}).get("data"), "engines": _engines(fp32, dirs)}


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def render(d: dict[str, Any]) -> str:
    i = d["input"]
    lines = [f"{d['artifact']}: {d['model'] or d['task']} ({d['task']}), sha256 {d['onnx_sha256'][:12]}",
             f"  classes ({len(d['classes'])}): {', '.join(d['classes'])}",
             f"  input {i['name']} {i['layout']} {i['size_hw'][1]}x{i['size_hw'][0]} {i['color']}, {i['resize']}, "
             f"mean {i['mean']} std {i['std']}; scores {d['score']}" + (" with background" if d["background"] else "")]
    lines.append("  variants on disk: " + ("; ".join(f"{v['precision']} {v['file']} {v['size_mb']} MB {v['state']}"
                                                    for v in d["variants"]) or "none"))
    r = d["recommendation"]
    # One measurement, so the table and the recommendation agree: calibrate's (the recommendation's own),
    # or build's when calibrate has not run.
    table = (r or {}).get("table") or d.get("precision_table") or []
    if table:
        lines.append(f"  precisions measured by {'calibrate' if (r or {}).get('table') else 'build'}"
                     + (f" on {r.get('machine')}" if (r or {}).get("table") else "") + ":")
    on_disk = {v["file"] for v in d["variants"]}
    stem = Path(d["artifact"]).stem
    for row in table:
        file = row.get("file") or ""
        # the variant's own name (int8 and int8-qdq both run as an INT8 engine: the file tells them apart)
        name = (file[len(stem) + 1:-len(".onnx")] if file.startswith(stem + ".") else "") or row.get("precision", "?")
        gate = row.get("gate") or ("passed" if row.get("within_tolerance") else "")
        base = name == "fp32" and row.get("backend", "onnxruntime") == "onnxruntime"
        delta = "baseline" if base or row.get("delta_points") is None else f"{row['delta_points']:+.2f} pts"
        where = "" if not file or file in on_disk else " (not on disk: edge-app build makes it)"
        lines.append(f"    {row.get('backend', '') + ' ' if row.get('backend') else ''}{name:<9} "
                     f"{row.get('metric', '')} {_fmt(row.get('value', ''))} {delta}, "
                     f"{row.get('median_ms')} ms, {row.get('speedup_vs_fp32', 1):.2f}x {gate}{where}")
    if r and table and not r.get("table"):
        lines.append("    (the recommendation below is calibrate's own run: edge-app calibrate --apply records its "
                     "table here too)")
    by = (r or {}).get("by_setting") or {"": r} if r else {}
    for setting, e in by.items():  # one per setting measured (whole frame, tiles): each runs its own
        lines.append(f"  recommended precision{' on ' + setting if setting else ''}: "
                     f"{e.get('backend', 'onnxruntime')} {e.get('precision')} "
                     f"({e.get('why')}; measured: {e.get('checked', False)}, on {e.get('machine', 'unknown CPU')})")
    if not r:
        lines.append("  recommended precision: none (calibrate --apply)")
    t = d["thresholds"]
    if t:
        lines.append(f"  thresholds {t['file']}: {t['state']}; {t.get('rule')}; NMS IoU {t.get('nms_iou')}")
        for c, v in (t.get("score_thresholds") or {}).items():
            e = (t.get("expected") or {}).get(c) or {}
            lines.append(f"    {c:<12} {v:.4f}  expected P {_fmt(e.get('precision'))} R {_fmt(e.get('recall'))}")
    elif d["task"] == "detection":
        lines.append("  thresholds: none (edge-app calibrate writes <model>.thresholds.json)")
    v = d["validation"] or {}
    shown = {k: v[k] for k in ("AP50", "mAP", "mIoU", "Dice", "images") if k in v}
    lines.append("  validation: " + (", ".join(f"{k} {_fmt(x)}" for k, x in shown.items()) or "none recorded"))
    tr = d["training"]
    lines.append("  training: " + (", ".join(f"{k} {x}" for k, x in tr.items() if x not in (None, "")) or "not recorded"))
    p = d["parity"] or {}
    if p:
        lines.append(f"  export: opset {p.get('opset')}, parity max |diff| {p.get('parity_max_abs_diff')} on "
                     f"{p.get('parity_images')} images")
    lines.append("  engines: " + "; ".join(f"{e['precision']} {e['state']}" for e in d["engines"]))
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    try:
        d = describe(Path(args.artifact), Path(args.engine_dir) if args.engine_dir else None)
    except (ArtifactError, OSError, json.JSONDecodeError) as exc:
        return fail("inspect", f"{exc}")
    print(json.dumps(d, indent=1, default=str) if args.json else render(d))
    return 0
