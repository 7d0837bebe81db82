"""Footage nobody tuned on, for bench_tracking.py (``--part unseen``): the shipped defaults against each
anchor's on MOTChallenge-layout sequences that no setting was chosen on, tracking and counting."""
from __future__ import annotations

import time
from pathlib import Path

import tracking_counts as counting
import tracking_protocol as proto
from anchor_trackers import ANCHORS
from tracking_jobs import ROOT, anchor, interpolated, ours, pool


def run(root: Path, workers: int) -> dict:
    """Footage nobody tuned on: every MOTChallenge-layout sequence under ``root`` (det/det.txt, gt/gt.txt,
    seqinfo.ini), tracked by the runtime's shipped defaults (live, and offline with the gap filling) and by
    each anchor with its own defaults, scored by TrackEval. Nothing is chosen here: a check of the defaults
    the seven shared sequences chose, on others."""
    from dataclasses import fields

    from edge_app.config.schema import TrackerConfig
    seqs = sorted(str(d) for d in root.iterdir() if (d / "det" / "det.txt").is_file() and (d / "gt" / "gt.txt").is_file()
                  and (d / "seqinfo.ini").is_file())
    work = ROOT / "var" / "bench-tracking" / "unseen"
    work.mkdir(parents=True, exist_ok=True)
    shipped = {f.name: getattr(TrackerConfig(), f.name) for f in fields(TrackerConfig) if f.name != "enabled"}
    kinds = {"ours live (shipped defaults)": {**shipped, "interpolate_s": 0.0},
             "ours offline (shipped defaults + gap filling)": {**shipped, "interpolate_s": proto.INTERPOLATE_S}}
    res: dict[str, dict[str, dict]] = {}
    t0 = time.time()
    with pool(workers) as ex:
        jobs = [(k, s, seq, str(work / f"ours{i}-{Path(seq).name}.txt")) for i, (k, s) in enumerate(kinds.items())
                for seq in seqs]
        for k, seq, m in ex.map(ours, jobs):
            res.setdefault(k, {})[Path(seq).name] = m
        ajobs = [(a, seq, str(work / f"{a}-{Path(seq).name}.txt")) for a in ANCHORS for seq in seqs]
        for a, seq, m in ex.map(anchor, ajobs):
            res.setdefault(ANCHORS[a][1], {})[Path(seq).name] = m
        for a, seq, m in ex.map(interpolated, ajobs):
            res.setdefault(ANCHORS[a][1] + " + interpolation", {})[Path(seq).name] = m
        # counting on the same tracks: the runtime's rule (and a bare line), the lines through each
        # sequence's anchors as on the shared ones
        live = next(iter(kinds))
        cjobs = [("ours", seq, str(work / f"ours0-{Path(seq).name}.txt"), [counting.RUNTIME_RULE, counting.PLAIN])
                 for seq in seqs]
        cjobs += [(a, seq, str(work / f"{a}-{Path(seq).name}.txt"), [counting.RUNTIME_RULE, counting.PLAIN])
                  for a in ANCHORS for seq in seqs]
        counts: dict[str, dict[str, dict]] = {}
        for who, seq, c in ex.map(counting.count_job, cjobs):
            counts.setdefault(live if who == "ours" else ANCHORS[who][1], {})[Path(seq).name] = c
    names = [Path(s).name for s in seqs]
    md = [f"Unseen sequences ({root}; nothing tuned on them): HOTA / IDF1 (%), the shipped defaults against each "
          f"anchor's; {time.time() - t0:.0f} s.", "", "| tracker | " + " | ".join(names) + " | mean | IDSW |",
          "|---|" + "---|" * (len(names) + 2)]
    for who, per in res.items():
        ms = [per[n] for n in names]
        md.append(f"| {who} | " + " | ".join(f"{100 * m['HOTA']:.1f} / {100 * m['IDF1']:.1f}" for m in ms)
                  + f" | **{100 * proto.mean(ms, 'HOTA'):.1f} / {100 * proto.mean(ms, 'IDF1'):.1f}** | "
                  + f"{sum(int(m['IDSW']) for m in ms)} |")
    rk, pk = counting.rule_key(counting.RUNTIME_RULE), counting.rule_key(counting.PLAIN)
    md += ["", f"Counting on them (summed |count error| / true crossings; the runtime's rule, {rk}, and a bare line; "
           "the median two lines, and the six quantile lines; track ids / true identities):", "",
           "| tracker | count error | six lines | bare line | ids ratio | true crossings |", "|---|---|---|---|---|---|"]
    for who, per in counts.items():
        rule = {n: per[n][rk] for n in names}
        md.append(f"| {who} | {100 * counting.share(rule, names):.1f} % | {100 * counting.share(rule, names, True):.1f} % "
                  f"| {100 * counting.share({n: per[n][pk] for n in names}, names):.1f} % | "
                  f"{sum(rule[n]['track_ids'] for n in names) / max(1, sum(rule[n]['true_ids'] for n in names)):.2f} | "
                  f"{sum(rule[n]['true'] for n in names)} |")
    print("\n".join(md), flush=True)
    return {"benchmark": "tracking_unseen", "sequences": names, "results": res, "counts": counts, "markdown": md}
