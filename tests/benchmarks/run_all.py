"""`make bench`: every benchmark in one run; writes bench/results.json and regenerates the README's
performance table from it (between the bench markers). Each benchmark prints its own summary line."""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCHES = [["bench_nms.py"], ["bench_coco.py"], ["bench_compute.py"], ["bench_precision.py"],
           ["bench_pipeline.py", "--minutes", "{minutes}"]]


def run(args: list[str]) -> list[dict]:
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name(args[0])), *args[1:]], cwd=ROOT,
                          capture_output=True, text=True, timeout=3600)
    results = []
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            results.append(json.loads(line))
        else:
            print(line, flush=True)
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
    return results


def table(results: dict) -> str:
    b = results["benchmarks"]
    lines = [f"Measured {results['date']} on {results['machine']} at commit {results['commit']} "
             "(ratios against a baseline run in the same process).", "",
             "| benchmark | result | goal |", "|---|---|---|"]
    for r in b:
        kind = r["benchmark"]
        if kind == "nms":
            for row in r["rows"]:
                lines.append(f"| NMS {row['distribution']} {row['boxes']} boxes | ours/torchvision {row['ratio']:.2f}x "
                             f"({row['ours_ms']:.2f} vs {row['torchvision_ms']:.2f} ms) | <= 1.0 |")
        elif kind == "coco":
            fast = next(x for x in r["rows"] if x["backend"] == "faster_coco_eval")
            lines.append(f"| COCO eval, {r['images']} images | faster-coco-eval {fast['speedup']:.2f}x pycocotools | >= 2.5x |")
        elif kind == "compute":
            lines.append(f"| SSDLite FP32 vs compute floor | {r['median_ms']:.2f} ms, floor {r['floor_ms']:.2f} ms at "
                         f"{r['peak_gflops']:.0f} GFLOP/s (numpy sgemm): {r['efficiency'] * 100:.1f}%"
                         + (f"; {r['runtime_median_ms']:.2f} ms with the runtime's non-spinning threads"
                            if "runtime_median_ms" in r else "") + " | - |")
        elif kind == "precision":
            for m in r["models"]:
                for row in m["rows"][1:]:
                    lines.append(f"| {m['model']} {row['precision']} vs fp32 | x{row['speedup_vs_fp32']:.2f}, "
                                 f"{row['metric']} {row['delta_points']:+.2f} pts | recommended {m['recommended']} |")
        elif kind == "pipeline_efficiency":
            lines.append(f"| pipeline efficiency (file as fast as it goes, det+seg, overlay, MJPEG to a viewer; medians of 3 alternating runs) | {r['pipeline_fps']:.2f} / "
                         f"{r['bare_fps']:.2f} fps = {r['ratio']:.3f} | >= 0.90 |")
        elif kind == "pipeline_latency":
            prec = ", ".join(f"{k} {v}" for k, v in r.get("precisions", {}).items())
            lines.append(f"| frame age, 30 fps live source, {r['minutes']:g} min ({prec}) | p50 {r['latency_ms']['frame_age']['p50']:.0f} ms, "
                         f"p99/p50 {r['frame_age_p99_over_p50']:.2f}, trend {r['frame_age_trend_ms_per_min']:+.1f} ms/min "
                         "| <= 1.5, flat |")
    lines += stage_table(b) + gpu_table(results.get("gpu"))
    return "\n".join(lines)


STAGES = {"capture_wait": "capture wait (frame in the slot)", "detector.preprocess": "detector preprocess",
          "detector.infer": "detector inference", "detector.postprocess": "detector decode (incl. NMS)",
          "detector.nms": "  of which threshold + top-k + NMS",
          "segmenter.preprocess": "segmenter preprocess", "segmenter.infer": "segmenter inference",
          "segmenter.postprocess": "segmenter argmax + resize", "overlay": "overlay",
          "encode.http": "hand-off to the HTTP output", "jpeg_encode": "JPEG encode (once per viewed frame)",
          "frame_age": "frame age at output"}


def stage_table(benchmarks: list[dict]) -> list[str]:
    run = next((r for r in benchmarks if r["benchmark"] == "pipeline_latency"), None)
    if run is None:
        return []
    lines = ["", f"Per-stage latency of the {run['minutes']:g}-minute live run (30 fps test source, 640x360, "
             "demo detector + segmenter, one MJPEG viewer; ms, over the whole run). Frame age is taken when "
             "the frame is handed to the outputs; the viewer's JPEG is encoded after that, in the HTTP "
             "thread:", "", "| stage | p50 | p90 | p99 |", "|---|---|---|---|"]
    for key, label in STAGES.items():
        v = run["latency_ms"].get(key)
        if v:
            lines.append(f"| {label} | {v['p50']:.1f} | {v['p90']:.1f} | {v['p99']:.1f} |")
    return lines


def gpu_table(gpu: dict | None) -> list[str]:
    if gpu is None:
        return ["", "GPU reference: not measured. No GPU machine was lent to the sessions that ran this; "
                "`python tests/benchmarks/bench_gpu.py` on one writes bench/gpu.json and this table shows it."]
    lines = ["", f"GPU reference on **{gpu['card']}** ({gpu['date']}, commit {gpu['commit']}, torch {gpu['torch']}, "
             f"CUDA {gpu['cuda']}), batch 1, ms (median); ONNX Runtime CPU on the same machine's "
             f"{gpu['cpu_count']} cores:", "", "| model | torch CUDA FP32 | torch CUDA FP16 | ONNX Runtime CPU |",
             "|---|---|---|---|"]
    for r in gpu["rows"]:
        cell = [f"{r[k]['median_ms']:.2f}" if "median_ms" in r.get(k, {}) else r.get(k, {}).get("skipped", "-")
                for k in ("torch_fp32", "torch_fp16", "onnxruntime_cpu")]
        lines.append(f"| {r['model']} {r['input'][0]}x{r['input'][1]} | " + " | ".join(cell) + " |")
    return lines


def main() -> int:
    import argparse
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--latency-minutes", type=float, default=10.0, help="length of the live latency run")
    a = p.parse_args()
    started = time.time()
    results = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
               "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True).stdout.strip(), "benchmarks": []}
    for args in BENCHES:
        results["benchmarks"] += run([x.format(minutes=a.latency_minutes) for x in args])
    results["seconds"] = round(time.time() - started, 1)
    gpu = ROOT / "bench" / "gpu.json"  # written on a GPU machine by bench_gpu.py, when one was lent
    if gpu.is_file():
        results["gpu"] = json.loads(gpu.read_text())
    out = ROOT / "bench" / "results.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        readme.write_text(head + start + "\n" + table(results) + "\n" + end + rest.split(end, 1)[1])
    print(f"SUMMARY bench: {len(results['benchmarks'])} results in {results['seconds']:.0f} s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
