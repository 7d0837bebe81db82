"""Tracking benchmarks, in one run, on the same machine (`python tests/benchmarks/bench_tracking.py
[--part accuracy,unseen,frames,speed,live] [--workers 2] [--reuse-grid] [--unseen DIR] [--frames DIR]`, about 40 minutes on 2 busy cores;
`make anchors` first, or it makes the anchors' venvs itself):

1. accuracy, the honest protocol (tracking_protocol.py): our tracker over a small grid (thresholds x
   association changes, one at a time) on the public detections of the seven shared MOT17/MOT15
   sequences, leave-one-sequence-out: settings chosen on six, scored on the seventh. Printed side by side:
   in-sample (one setting tuned on all seven) and out-of-sample (held-out folds), each change's own
   out-of-sample effect, and the anchors on the same files, in the same run, each in its own venv with
   its defaults: roboflow `trackers` 2.6.1 ByteTrack and BoTSORT, `boxmot` 25.0 BotSort, OccluBoost and
   OcSort. Everything scored by TrackEval (`edge-app evaluate-tracks`).
   Goals: out-of-sample mean HOTA and IDF1 on the four MOT17 sequences >= the best anchor's, and no
   sequence below `trackers`' ByteTrack.
2. counts (tracking_counts.py): on every sequence a vertical and a horizontal line through the median
   anchor of the true boxes; `edge-app evaluate-counts`' rule, its settings chosen leave-one-sequence-out
   on our held-out tracks, on ours and each anchor's vs the truth: summed |count error| / true crossings
   (goal <= 10 % and at most half of ByteTrack's), track ids / true ids, each rule change alone, and the
   error taken apart by cause (calibration/count_errors.py). Offline rows: our tracks with gap filling
   (edge-app track looks ahead) against the anchors' tracks given the same gap filling.
3. unseen (when ``--unseen DIR``, default var/mot-extra, holds MOTChallenge-layout sequences): the shipped
   defaults, tuned on none of them, against each anchor's defaults there (live and offline); nothing chosen.
4. frames (tracking_frames.py): the frame-based cues (camera motion, appearance) on the MOT17 *-mini
   sequences' frames, and on whole sequences with their frames (``--frames DIR``, default var/mot-frames):
   HOTA / IDF1 without the frames, with GMC, with the appearance cue; GMC's error on a still camera.
5. speed: one update at 10 / 100 / 500 detections on the same generated frames, median ms, ours (the
   defaults) against `trackers`' ByteTrack (goal <= 0.5x at 100).
6. live: the tracker's p50/p99 ms inside the pipeline (synthetic scene, demo detector, every frame as
   fast as it goes), and the pipeline's fps with tracking and two counting lines on against off.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
import tracking_counts as counting  # noqa: E402
import tracking_jobs as tj  # noqa: E402
import tracking_protocol as proto  # noqa: E402
import tracking_frames as frames  # noqa: E402
import tracking_unseen as unseen  # noqa: E402
from anchor_trackers import ANCHORS  # noqa: E402

MOT = ROOT.parent / "shared" / "data" / "mot"


def accuracy(work: Path, workers: int, reuse: bool = False) -> dict:
    seqs = [s for s in proto.SEQUENCES if (MOT / s).is_dir()]
    grid = proto.settings()
    names = {proto.key(v, s): (v, s) for v, s in grid}
    results: dict[str, dict[str, dict]] = {k: {} for k in names}
    index = {k: proto.file_id(k) for k in names}
    cache = work / "grid.json"
    if reuse and cache.is_file():  # --reuse-grid: the last run's results of the same settings (and tracks files)
        old = json.loads(cache.read_text())
        results.update({k: v for k, v in old.items() if k in names and set(v) == set(seqs)})
    jobs = [(k, s, seq, str(work / f"grid-{index[k]}-{seq}.txt")) for k, (v, s) in names.items() for seq in seqs
            if seq not in results[k]]
    t0 = time.time()
    print(f"grid: {len(names)} settings x {len(seqs)} sequences; {len(jobs)} runs to do, {workers} workers", flush=True)
    with tj.pool(workers) as pool:
        for n, (k, seq, m) in enumerate(pool.map(tj.ours, jobs, chunksize=4), 1):
            results[k][seq] = m
            if n % 70 == 0 or n == len(jobs):
                print(f"  {n}/{len(jobs)} runs, {time.time() - t0:.0f} s", flush=True)
                cache.write_text(json.dumps(results))  # an interrupted run keeps what it did (--reuse-grid)
        cache.write_text(json.dumps(results))
        anchors: dict[str, dict[str, dict]] = {a: {} for a in ANCHORS}
        acache = work / "anchors.json"
        if reuse and acache.is_file():  # --reuse-grid: their last results too (their code does not change)
            anchors.update({a: v for a, v in json.loads(acache.read_text()).items() if a in ANCHORS})
        ajobs = [(a, seq, str(work / f"{a}-{seq}.txt")) for a in ANCHORS for seq in seqs if seq not in anchors[a]]
        for a, seq, m in pool.map(tj.anchor, ajobs):
            anchors[a][seq] = m
        acache.write_text(json.dumps(anchors))
        # the anchors with our offline interpolation: what the same look-ahead gives them
        anchors_interp: dict[str, dict[str, dict]] = {a: {} for a in ANCHORS}
        icache = work / "anchors-interpolated.json"
        if reuse and icache.is_file():
            anchors_interp.update({a: v for a, v in json.loads(icache.read_text()).items() if a in ANCHORS})
        ijobs = [(a, seq, str(work / f"{a}-{seq}.txt")) for a in ANCHORS for seq in seqs if seq not in anchors_interp[a]]
        for a, seq, m in pool.map(tj.interpolated, ijobs):
            anchors_interp[a][seq] = m
        icache.write_text(json.dumps(anchors_interp))
    print(f"grid and anchors: {time.time() - t0:.0f} s", flush=True)

    # each change on its own, out-of-sample: LOSO over its variant's thresholds only
    changes = {}
    for variant in proto.VARIANTS:
        cands = [k for k, (v, _) in names.items() if v == variant]
        fold = proto.loso(results, cands, seqs)
        changes[variant] = {m: proto.mean([fold["held_out"][s] for s in seqs if s in proto.MOT17], m) for m in ("HOTA", "IDF1")}
        changes[variant].update({f"{m}_all": proto.mean(list(fold["held_out"].values()), m) for m in ("HOTA", "IDF1")})
    # the nested test of each later round's changes: that round's base grid with one variant added, LOSO
    nested: dict[str, dict[str, dict]] = {}
    for rnd, (base, added) in proto.ROUNDS.items():
        nested[rnd] = {}
        for variant in [None] + added:
            vs = base + ([variant] if variant else [])
            f = proto.loso(results, [k for k, (v, _) in names.items() if v in vs], seqs)
            nested[rnd][variant or "base"] = {
                **{m: proto.mean([f["held_out"][s] for s in seqs if s in proto.MOT17], m) for m in ("HOTA", "IDF1")},
                **{f"{m}_all": proto.mean(list(f["held_out"].values()), m) for m in ("HOTA", "IDF1")},
                "score_all": sum(proto.score(m) for m in f["held_out"].values()) / len(seqs)}
    # the whole grid of kept changes: the live defaults (variants the runtime can run), and the honest
    # numbers; offline (edge-app track over a file: those variants and the ones that look ahead)
    live = [k for k, (v, _) in names.items() if v in proto.LIVE_CANDIDATES]
    fold = proto.loso(results, live, seqs)
    default = proto.default_of(fold)
    tuned = proto.in_sample(results, live, seqs)
    offline = [k for k, (v, _) in names.items() if v in proto.OFFLINE_CANDIDATES]
    ofold = proto.loso(results, offline, seqs)
    odefault = proto.default_of(ofold)
    otuned = proto.in_sample(results, offline, seqs)
    rows = []
    for seq in seqs:
        rows.append({"sequence": seq, "out_of_sample": fold["held_out"][seq], "chosen": fold["chosen"][seq],
                     "in_sample": results[tuned][seq], "default": results[default][seq],
                     "offline_out_of_sample": ofold["held_out"][seq], "offline_chosen": ofold["chosen"][seq],
                     "offline_in_sample": results[otuned][seq],
                     "anchors": {a: anchors[a][seq] for a in ANCHORS},
                     "anchors_interpolated": {a: anchors_interp[a][seq] for a in ANCHORS}})
    r = {"benchmark": "tracking_accuracy", "sequences": seqs, "rows": rows, "changes": changes, "nested": nested,
         "kept": proto.KEPT,
         "default": {"variant": names[default][0], **names[default][1]}, "in_sample_setting": tuned,
         "folds_choosing_default": sum(c == default for c in fold["chosen"].values()),
         "offline_default": {"variant": names[odefault][0], **names[odefault][1]},
         "offline_folds_choosing_default": sum(c == odefault for c in ofold["chosen"].values()),
         "grid_size": len(names), "live_grid_size": len(live)}
    r.update(counts(work, workers, seqs, fold, index))
    report(r)
    return r


def counts(work: Path, workers: int, seqs: list[str], fold: dict, index: dict[str, str]) -> dict:
    """The counting part (tracking_counts.py): every rule on our held-out live tracks, the rule chosen per
    fold on the other six, that rule on every anchor's tracks, each rule change alone, the decomposition."""
    t0 = time.time()
    ours = {seq: str(work / f"grid-{index[fold['chosen'][seq]]}-{seq}.txt") for seq in seqs}
    per: dict[str, dict[str, dict]] = {}
    with tj.pool(workers) as pool:
        for who, seq, c in pool.map(counting.count_job, [("ours", seq, ours[seq], counting.every_rule()) for seq in seqs]):
            per.setdefault(who, {})[seq] = c
    every = [r for family in counting.RULES.values() for r in family]
    chosen = counting.choose(per["ours"], seqs, every)
    default_rule, votes = counting.default_rule(per["ours"], seqs, chosen)
    runtime, why = counting.runtime_rule(default_rule, votes)
    changes = {}
    for family, rules in counting.RULES.items():
        pick = counting.choose(per["ours"], seqs, rules)
        held = {s: per["ours"][s][counting.rule_key(pick[s])] for s in seqs}
        m17 = [s for s in seqs if s in proto.MOT17]
        changes[family] = {"MOT17": counting.share(held, m17), "all": counting.share(held, seqs),
                           "MOT17_6": counting.share(held, m17, True), "all_6": counting.share(held, seqs, True)}
    tracks = {"ours": ours, **{a: {seq: str(work / f"{a}-{seq}.txt") for seq in seqs} for a in ANCHORS}}
    jobs = [(who, seq, t, [chosen[seq], counting.PLAIN]) for who, byseq in tracks.items() if who != "ours"
            for seq, t in byseq.items()]
    djobs = [(who, seq, t, chosen[seq]) for who, byseq in tracks.items() for seq, t in byseq.items()]
    dec: dict[str, dict[str, dict]] = {}
    with tj.pool(workers) as pool:
        for who, seq, c in pool.map(counting.count_job, jobs):
            per.setdefault(who, {})[seq] = c
        for who, seq, d in pool.map(counting.decompose_job, djobs):
            dec.setdefault(who, {})[seq] = d
    print(f"counts: {time.time() - t0:.0f} s", flush=True)
    plain = counting.rule_key(counting.PLAIN)
    return {"count_rule_chosen": chosen, "count_rule_default": default_rule, "count_rule_votes": votes,
            "count_rule_runtime": runtime, "count_rule_runtime_why": why,
            "counts_runtime_rule": {seq: per["ours"][seq][counting.rule_key(runtime)] for seq in seqs},
            "count_rule_changes": changes, "decomposition": dec,
            "counts": {who: {seq: {**c[counting.rule_key(chosen[seq])], "rule": chosen[seq]} for seq, c in byseq.items()}
                       for who, byseq in per.items()},
            "counts_plain": {who: {seq: c[plain] for seq, c in byseq.items()} for who, byseq in per.items()}}


def _row(label: str, ms: list[dict]) -> str:
    return (f"| {label} | " + " | ".join(f"{100 * m['HOTA']:.1f} / {100 * m['IDF1']:.1f}" for m in ms)
            + f" | **{100 * proto.mean(ms[:4], 'HOTA'):.1f} / {100 * proto.mean(ms[:4], 'IDF1'):.1f}** "
            + f"| {100 * proto.mean(ms, 'HOTA'):.1f} / {100 * proto.mean(ms, 'IDF1'):.1f} |")


def report(r: dict) -> list[str]:
    """The README's tables (markdown), printed and kept in the result."""
    seqs = r["sequences"]
    short = [s.replace("-FRCNN", "") for s in seqs]
    md = [f"HOTA / IDF1 (%) per sequence; means over the four MOT17 sequences and over all {len(seqs)}. "
          f"Grid: {r['grid_size']} settings ({r['live_grid_size']} of kept changes the live runtime can run). Live defaults (chosen by {r['folds_choosing_default']} of {len(seqs)} folds): "
          + ", ".join(f"{k}={v}" for k, v in r["default"].items()) + ".", "",
          "| tracker | " + " | ".join(short) + " | MOT17 mean | all mean |",
          "|---|" + "---|" * (len(seqs) + 2)]
    md.append(_row("ours live, out-of-sample (held-out folds)", [row["out_of_sample"] for row in r["rows"]]))
    md.append(_row("ours live, in-sample (one setting tuned on all)", [row["in_sample"] for row in r["rows"]]))
    md.append(_row("ours live, the defaults (partly in-sample)", [row["default"] for row in r["rows"]]))
    for a, (_venv, label) in ANCHORS.items():
        md.append(_row(label, [row["anchors"][a] for row in r["rows"]]))
    md += ["", "Offline (`edge-app track` over a file, which may look ahead: a track's gaps filled with straight-line "
           "boxes, `--interpolate-s`); defaults (chosen by " + f"{r['offline_folds_choosing_default']} of {len(seqs)} "
           "folds): " + ", ".join(f"{k}={v}" for k, v in r["offline_default"].items()) + ". The anchors with the same "
           "interpolation of their tracks, for a fair comparison:", "",
           "| tracker | " + " | ".join(short) + " | MOT17 mean | all mean |", "|---|" + "---|" * (len(seqs) + 2)]
    md.append(_row("ours offline, out-of-sample (held-out folds)", [row["offline_out_of_sample"] for row in r["rows"]]))
    md.append(_row("ours offline, in-sample (one setting tuned on all)", [row["offline_in_sample"] for row in r["rows"]]))
    for a, (_venv, label) in ANCHORS.items():
        md.append(_row(label + " + interpolation", [row["anchors_interpolated"][a] for row in r["rows"]]))
    md += ["", "Each change alone, out-of-sample (LOSO over the same 24 thresholds; means of the held-out folds):", "",
           "| variant | MOT17 HOTA / IDF1 | all HOTA / IDF1 |", "|---|---|---|"]
    for v, c in r["changes"].items():
        md.append(f"| {v} | {100 * c['HOTA']:.1f} / {100 * c['IDF1']:.1f} | {100 * c['HOTA_all']:.1f} / {100 * c['IDF1_all']:.1f} |")
    md += ["", "Later rounds, the nested test: the grid so far with each new variant added, LOSO (held-out "
           "folds; score = mean (HOTA + IDF1) / 2 over all seven, the protocol's own). A change is kept when it "
           "raises that score; kept: " + ", ".join(r["kept"]) + ".", "",
           "| grid | MOT17 HOTA / IDF1 | all HOTA / IDF1 | all score |", "|---|---|---|---|"]
    for rnd, tests in r["nested"].items():
        for v, c in tests.items():
            md.append(f"| {rnd}: {'its base' if v == 'base' else 'base + ' + v} | {100 * c['HOTA']:.1f} / "
                      f"{100 * c['IDF1']:.1f} | {100 * c['HOTA_all']:.1f} / {100 * c['IDF1_all']:.1f} | "
                      f"{100 * c['score_all']:.2f} |")
    labels = {"ours": "ours, out-of-sample (live tracks and rule)", **{a: label for a, (_v, label) in ANCHORS.items()}}
    md += counting.tables(r, labels)
    r["markdown"] = md
    print("\n".join(md), flush=True)
    return md


def speed() -> dict:
    from anchor_trackers import scene

    from edge_app.analytics.tracker import Tracker
    from edge_app.core.types import Detections

    py = tj.anchor_python("trackers")
    rows = []
    for n in (10, 100, 500):
        ours, theirs = [], []
        for _round in range(3):  # taking turns: load from elsewhere falls on both
            tracker, times = Tracker(), []
            for f, (boxes, scores) in enumerate(scene(n)):
                d = Detections(boxes, scores, np.zeros(n, np.int64))
                t0 = time.perf_counter()
                tracker.update(d, f / 30)
                times.append(time.perf_counter() - t0)
            ours.append(1e3 * float(np.median(times[20:])))
            theirs.append(float(subprocess.run([str(py), str(tj.RUNNER), "--time", "trackers-bytetrack", str(n)],
                                               capture_output=True, text=True, check=True).stdout.strip()))
        o, t = statistics.median(ours), statistics.median(theirs)
        rows.append({"detections": n, "ours_ms": o, "theirs_ms": t, "ratio": o / t})
        print(f"{n:>4} detections: ours {o:.3f} ms, trackers' ByteTrack {t:.3f} ms per update: ratio {o / t:.2f} "
              "(goal <= 0.5)", flush=True)
    return {"benchmark": "tracking_speed", "rows": rows}


def _pipeline_fps(tracking: bool, seconds: float) -> tuple[float, dict]:
    from edge_app.analytics.counting import Analytics
    from edge_app.config.schema import AnalyticsConfig, LineConfig, TrackerConfig
    from edge_app.inference.models import ModelSpec, open_model
    from edge_app.streams.pipeline import Pipeline
    from edge_app.review.rolling import RollingMonitor
    from edge_app.sources.synthetic import SyntheticSource
    from edge_app.streams.telemetry import Telemetry

    demo = ROOT / "edge_app" / "demo"
    model = open_model(ModelSpec("detector", "detector", demo / "detector.onnx",
                                 thresholds_file=demo / "detector.thresholds.json"))
    lines = (LineConfig(name="a", points=((320.0, 40.0), (320.0, 440.0))),
             LineConfig(name="b", points=((40.0, 240.0), (600.0, 240.0))))
    analytics = Analytics(AnalyticsConfig(lines=lines), {"detector": TrackerConfig(enabled=True)} if tracking else {},
                          640, 480)
    telemetry = Telemetry()
    source = SyntheticSource("synthetic://", width=640, height=480, fps=30, seed=1, realtime=False)
    pipe = Pipeline(source, [model], [], RollingMonitor(), telemetry, hud=True, analytics=analytics)
    pipe.start()
    time.sleep(3)
    before, t0 = telemetry.counters["frames_out"], time.monotonic()
    time.sleep(seconds)
    fps = (telemetry.counters["frames_out"] - before) / (time.monotonic() - t0)
    lat = telemetry.latency()
    pipe.stop()
    return fps, lat.get("tracking", {})


def live(seconds: float = 20.0) -> dict:
    on, off, stage = [], [], {}
    for _round in range(3):
        fps, lat = _pipeline_fps(True, seconds)
        on.append(fps)
        stage = lat or stage
        off.append(_pipeline_fps(False, seconds)[0])
    r = {"benchmark": "tracking_live", "fps_tracking": statistics.median(on), "fps_without": statistics.median(off),
         "tracker_ms": stage}
    r["ratio"] = r["fps_tracking"] / r["fps_without"]
    print(f"live: {r['fps_tracking']:.2f} fps with tracking + 2 lines, {r['fps_without']:.2f} without: "
          f"{r['ratio']:.3f}; tracker p50 {stage.get('p50', 0):.2f} ms, p99 {stage.get('p99', 0):.2f} ms", flush=True)
    return r


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--part", default="accuracy,unseen,frames,speed,live")
    p.add_argument("--workers", type=int, default=2, help="processes for the grid (niced)")
    p.add_argument("--unseen", type=Path, default=ROOT / "var" / "mot-extra",
                   help="--part unseen: a folder of MOTChallenge-layout sequences nobody tuned on (default var/mot-extra)")
    p.add_argument("--frames", type=Path, default=ROOT / "var" / "mot-frames",
                   help="--part frames: whole MOTChallenge-layout sequences with their img1/ (default var/mot-frames)")
    p.add_argument("--reuse-grid", action="store_true", help="reuse the last run's grid results "
                   "(var/bench-tracking/grid.json; the tracks files must still be there)")
    a = p.parse_args()
    parts = a.part.split(",")
    work = ROOT / "var" / "bench-tracking"
    work.mkdir(parents=True, exist_ok=True)
    out = []
    if "accuracy" in parts and MOT.is_dir():
        out.append(accuracy(work, a.workers, a.reuse_grid))
    if "unseen" in parts and a.unseen.is_dir():
        out.append(unseen.run(a.unseen.resolve(), a.workers))
    if "frames" in parts and MOT.is_dir():
        out.append(frames.run(MOT, a.frames.resolve(), a.workers))
    if "speed" in parts:
        out.append(speed())
    if "live" in parts:
        out.append(live())
    for r in out:
        print(f"SUMMARY {r['benchmark']}")
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
