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
           ["bench_pipeline.py", "--minutes", "{minutes}"], ["bench_tracking.py"], ["bench_events.py"],
           ["bench_fleet.py", "--hostile", "0.01"], ["bench_review.py"], ["bench_streams.py"], ["bench_spread.py"]]
TRACKING = ("tracking_accuracy", "tracking_frames", "tracking_speed", "tracking_live")


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
                runs = f"; runs {', '.join(f'{x:.2f}' for x in row['ratio_runs'])}" if row.get("ratio_runs") else ""
                lines.append(f"| NMS {row['distribution']} {row['boxes']} boxes | ours/torchvision {row['ratio']:.2f}x "
                             f"({row['ours_ms']:.2f} vs {row['torchvision_ms']:.2f} ms{runs}) | <= 1.0 |")
        elif kind == "spread":
            for row in r["rows"]:
                lines.append(f"| 3x2 + full tiled frame vs the whole frame, {row['backend']} {row['precision']} (coco) | "
                             f"one call {row['batch_ratio']:.2f}x, in turn {row['frames_ratio']:.2f}x, in flight "
                             f"{row['requests_ratio']:.2f}x (whole frame {row['full_ms']:.1f} ms) | <= 5 |")
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
                    lines.append(f"| {m['model']} {row.get('backend', 'onnxruntime')} {row['precision']} vs fp32 | "
                                 f"x{row['speedup_vs_fp32']:.2f}, "
                                 f"{row['metric']} {row['delta_points']:+.2f} pts | recommended {m['recommended']} |")
        elif kind == "pipeline_efficiency":
            lines.append(f"| pipeline efficiency (file as fast as it goes, det+seg, overlay, MJPEG to a viewer; medians of 3 alternating runs) | {r['pipeline_fps']:.2f} / "
                         f"{r['bare_fps']:.2f} fps = {r['ratio']:.3f} | >= 0.90 |")
        elif kind == "pipeline_latency":
            prec = ", ".join(f"{k} {v}" for k, v in r.get("precisions", {}).items())
            lines.append(f"| frame age, 30 fps live source, {r['minutes']:g} min ({prec}) | p50 {r['latency_ms']['frame_age']['p50']:.0f} ms, "
                         f"p99/p50 {r['frame_age_p99_over_p50']:.2f}, trend {r['frame_age_trend_ms_per_min']:+.1f} ms/min "
                         "| <= 1.5, flat |")
    lines += stage_table(b) + tracking_table(b) + events_table(b) + fleet_table(b) + review_table(b) + streams_table(b) + gpu_table(results.get("gpu"))
    return "\n".join(lines)


def events_table(benchmarks: list[dict]) -> list[str]:
    ev = next((r for r in benchmarks if r["benchmark"] == "events"), None)
    if ev is None:
        return []
    lines = ["", f"Events over MQTT ({ev.get('measured', '')}): one device, Mosquitto on loopback, a subscriber in "
             "another process; latency = emit on the device to arrival (goal: 0 lost at 1,000 events/s):", "",
             "| rate | received / sent | lost | latency p50 / p99 ms | emit on the device p50 / p99 ms |",
             "|---|---|---|---|---|"]
    for r in ev["rows"]:
        lines.append(f"| {r['rate']:.0f} events/s | {r['received']} / {r['events']} | {r['lost']} | "
                     f"{r['latency_p50_ms']:.1f} / {r['latency_p99_ms']:.1f} | {r['emit_p50_ms']:.3f} / {r['emit_p99_ms']:.3f} |")
    return lines


def streams_table(benchmarks: list[dict]) -> list[str]:
    """Several cameras in one process (bench_streams.py)."""
    by = {r["benchmark"]: r for r in benchmarks if r["benchmark"].startswith("streams_")}
    if not by:
        return []
    lines = ["", "Several cameras (bench_streams.py):", ""]
    if "streams_scale" in by:
        sc = by["streams_scale"]
        lines += [f"Aggregate fps, {sc['source']}, {sc['model']}: N streams in one process vs N processes of one "
                  "stream (goal: >= 1.2x at N = 4):", "",
                  "| streams | one process fps | N processes fps | ratio |", "|---|---|---|---|"]
        lines += [f"| {r['streams']} | {r['one_process_fps']:.1f} | {r['n_processes_fps']:.1f} | {r['ratio']:.2f}"
                  + (f" (frames per CPU second {r['one_process_frames_per_cpu_s']:.1f} vs "
                     f"{r['n_processes_frames_per_cpu_s']:.1f}: {r['cpu_ratio']:.2f})" if "cpu_ratio" in r else "") + " |"
                  for r in sc["rows"]]
    if "streams_batch" in by:
        lines += ["", "Inference per frame, one call with a batch of N vs N single calls (ONNX Runtime CPU, dynamic-batch "
                  "copies of the shipped models):", "", "| model | N | batched ms/frame | single ms/frame | speed-up |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['model']} | {r['n']} | {r['batch_ms_per_frame']:.1f} | {r['single_ms_per_frame']:.1f} | "
                  f"{r['speedup']:.2f}x |" for r in by["streams_batch"]["rows"]]
    if "streams_fairness" in by:
        f = by["streams_fairness"]
        ages = "; ".join(f"{n} {a['p50']:.0f} / {a['p99']:.0f}" for n, a in f["frame_age_ms"].items())
        lines += ["", f"Fairness: 4 equal streams, every frame: min/max per-stream fps {f['min_max']:.3f} (goal >= 0.9). "
                  f"4 live 15 fps streams: frame age p50 / p99 ms per stream: {ages}."]
    if "streams_memory" in by:
        m = by["streams_memory"]
        lines += ["", f"Memory: RSS {m['rss_mb_1']:.0f} MB with 1 stream, {m['rss_mb_8']:.0f} MB with 8 ({m['ratio']:.2f}x)."]
    return lines


def review_table(benchmarks: list[dict]) -> list[str]:
    rv = next((r for r in benchmarks if r["benchmark"] == "review"), None)
    if rv is None:
        return []
    a, b = rv["labelled_frames"]
    lines = ["", f"Labelling loop ({rv.get('measured', '')}): {rv['samples']} live frames (frames {a}-{b} of the "
             "unlabelled synthetic scene) labelled through the review API with the scene's truth, thresholds "
             "recalibrated from them (`samples export` + `calibrate --data`) and put in by SIGHUP; rolling P / R / F1 "
             f"over the same {rv['after']['frames']} later frames of that scene with each set of thresholds:", "",
             "| class | threshold still -> live | P still / live | R still / live | F1 still / live |",
             "|---|---|---|---|---|"]
    th = rv["thresholds"]
    for cls in [c for c in rv["before"] if c != "frames"]:
        o, n = rv["before"][cls], rv["after"][cls]
        t = f"{th['still'][cls]:.3f} -> {th['live'][cls]:.3f}" if cls in th["live"] else ""
        lines.append(f"| {cls} | {t} | {o['precision']:.3f} / {n['precision']:.3f} | {o['recall']:.3f} / "
                     f"{n['recall']:.3f} | {o['f1']:.3f} / {n['f1']:.3f} |")
    return lines


def fleet_table(benchmarks: list[dict]) -> list[str]:
    fl = next((r for r in benchmarks if r["benchmark"] == "fleet"), None)
    if fl is None:
        return []
    lines = ["", f"Fleet ({fl.get('measured', '')}): simulated devices in one process (one MQTT client each), one "
             "Mosquitto, one `edge-app fleet`, all on this machine; lag = the event's time on the device to its "
             "commit in the fleet's SQLite (goal: 0 lost, p99 < 1 s); CPU in % of one core:", "",
             "| devices | s | messages/s | stored / sent | lost | lag p50 / p99 ms | of which queued in the fleet p99 ms | "
             "CPU broker / fleet / devices | hostile sent / refused | writer alive | page answers (failed), p99 ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in fl["rows"]:
        c = r["cpu_percent"]
        lines.append(f"| {r['devices']} x ({r['rate']:.0f} events/s + 1 status/s) | {r['seconds']:.0f} | "
                     f"{r['messages_per_s']} | {r['stored']} / {r['sent']} | {r['lost']} | {r['lag_p50_ms']} / "
                     f"{r['lag_p99_ms']} | {r['queue_p99_ms']} | {c['broker']} / {c['fleet']} / {c['devices']} | "
                     f"{r.get('hostile_sent', 0)} / {r.get('refused', 0)} | {r.get('writer_alive', '')} | "
                     f"{r.get('page_answers', '')} ({r.get('page_failures', '')}), {r.get('page_p99_ms', '')} |")
    return lines


def tracking_table(benchmarks: list[dict]) -> list[str]:
    """Our tracker against roboflow trackers' ByteTrack: per sequence, speed, and inside the pipeline."""
    acc = next((r for r in benchmarks if r["benchmark"] == "tracking_accuracy"), None)
    spd = next((r for r in benchmarks if r["benchmark"] == "tracking_speed"), None)
    live = next((r for r in benchmarks if r["benchmark"] == "tracking_live"), None)
    if not (acc or spd or live):
        return []
    stamp = next(r.get("measured", "") for r in (acc, spd, live) if r)
    lines = ["", f"Tracking{' (' + stamp + ')' if stamp else ''}: leave-one-sequence-out on the public detections "
             "of the shared sequences against the anchors, all scored by TrackEval "
             "(tests/benchmarks/bench_tracking.py prints the same tables):", ""]
    lines += (acc or {}).get("markdown", [])
    frames = next((r for r in benchmarks if r["benchmark"] == "tracking_frames"), None)
    for row in (frames or {}).get("rows", []):
        lines.append(f"- {row['sequence']}-mini: GMC {row['gmc_ms']:.1f} ms/frame, true boxes' IoU to the next frame "
                     f"{row['iou_without_gmc']:.3f} -> {row['iou_with_gmc']:.3f}; appearance {row['appearance_ms']:.1f} "
                     f"ms/frame, rank-1 {row['appearance_rank1']:.2f} (chance {row['appearance_chance']:.2f})")
    if spd:
        lines += ["", "| detections per frame | ours ms | trackers' ByteTrack ms | ratio (goal <= 0.5) |", "|---|---|---|---|"]
        lines += [f"| {r['detections']} | {r['ours_ms']:.3f} | {r['theirs_ms']:.3f} | {r['ratio']:.2f} |" for r in spd["rows"]]
    if live:
        t = live["tracker_ms"]
        lines += ["", f"In the pipeline (synthetic scene, demo detector, every frame as fast as it goes): tracker "
                  f"p50 {t.get('p50', 0):.2f} ms, p99 {t.get('p99', 0):.2f} ms; {live['fps_tracking']:.1f} fps with "
                  f"tracking and two counting lines against {live['fps_without']:.1f} without ({live['ratio']:.3f})."]
    return lines


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
    p.add_argument("--only", action="append", help="run just this benchmark script (repeatable); the other "
                   "results are kept from bench/results.json")
    a = p.parse_args()
    started = time.time()
    results = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
               "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                        text=True).stdout.strip(), "benchmarks": []}
    out = ROOT / "bench" / "results.json"
    kept: list[dict] = []
    if a.only and out.is_file():
        old = json.loads(out.read_text())
        kept = old["benchmarks"]
        results.update({k: old[k] for k in ("date", "machine", "commit") if k in old})
    stamp = f"{time.strftime('%Y-%m-%d')}, commit {subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip()}"
    fresh: list[dict] = []
    for args in BENCHES:
        if a.only and args[0] not in a.only:
            continue
        for r in run([x.format(minutes=a.latency_minutes) for x in args]):
            r["measured"] = stamp
            fresh.append(r)
    names = {r["benchmark"] for r in fresh}
    results["benchmarks"] = [r for r in kept if r["benchmark"] not in names] + fresh
    results["seconds"] = round(time.time() - started, 1)
    gpu = ROOT / "bench" / "gpu.json"  # written on a GPU machine by bench_gpu.py, when one was lent
    if gpu.is_file():
        results["gpu"] = json.loads(gpu.read_text())
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
