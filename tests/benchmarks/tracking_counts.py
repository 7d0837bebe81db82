"""Counting in the tracking benchmark (bench_tracking.py): the lines, the counting rule's settings chosen
leave-one-sequence-out, and where the count error comes from.

On every shared sequence, a vertical and a horizontal line through the median anchor (bottom centre) of
the true boxes: the main flows (the issue's measure). With so few crossings per sequence (12 to 50) one
crossing more or less moves a sequence's error by several points, so the rule is *chosen* on six lines
per sequence (vertical and horizontal through the 25th, 50th and 75th percentiles of the anchors: three
times the crossings) and *reported* on the median two (and on the six, beside). ``evaluate-counts``' rule (the runtime's, ``analytics.lines``) counts the
tracks and the truth's identities; the error is the summed |count error| over both lines and directions as
a share of the true crossings. The rule's settings (the line margin, the counting memory, count_at_start,
count_at_end) are chosen like the tracker's: for each sequence, the one with the least summed error on
our tracks of the other six; each change alone is chosen the same way among its own settings.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

import tracking_protocol as proto

MOT = Path(__file__).resolve().parents[3] / "shared" / "data" / "mot"
MARGINS = (0.1, 0.2, 0.3)
MEMORY = [(s, r) for s in (4.0, 8.0) for r in (0.5, 1.0, 2.0)]
# the rule's changes, each over the line margins; "margin" is the first round's rule
RULES: dict[str, list[dict[str, Any]]] = {
    "margin": [{"margin": m} for m in MARGINS],
    "+memory": [{"margin": m, "memory_s": s, "memory_radius": r} for m in MARGINS for s, r in MEMORY],
    "+start": [{"margin": m, "count_at_start": True} for m in MARGINS],
    "+end": [{"margin": m, "count_at_end": True} for m in MARGINS],
    "+start+end": [{"margin": m, "count_at_start": True, "count_at_end": True} for m in MARGINS],
    "+memory+end": [{"margin": m, "memory_s": s, "memory_radius": r, "count_at_end": True}
                    for m in MARGINS for s, r in MEMORY],
}
PLAIN = {"margin": 0.0}   # no hysteresis, no repairs: what a bare line counter gives
# The runtime's counting rule (config.toml [analytics]) and when the protocol may change it: only when a strict
# majority of the folds (4 of 7) chose one rule. Fixed 2026-12-05, before the fourth round's numbers were
# seen: the folds' picks had split between rule families and the single pick had flipped between rounds on
# the same crossings, i.e. on noise.
RUNTIME_RULE = {"margin": 0.2, "memory_s": 8.0, "memory_radius": 2.0, "count_at_end": True}
MAJORITY = 4


def rule_key(rule: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(rule.items()))


def every_rule() -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {rule_key(PLAIN): PLAIN}
    for family in RULES.values():
        out.update({rule_key(r): r for r in family})
    return list(out.values())


QUANTILES = (0.25, 0.5, 0.75)


def seq_dir(seq: str) -> Path:
    """A shared sequence by name, or any MOTChallenge-layout folder by its absolute path (the unseen part)."""
    return Path(seq) if Path(seq).is_absolute() else MOT / seq


def lines_of(seq: str, margin: float, at: tuple[float, ...] = (0.5,)) -> tuple[Any, list[Any]]:
    """(seqinfo, [vertical, horizontal] through each quantile ``at`` of the anchors of the sequence's true
    boxes); the median's are named vertical and horizontal."""
    from calibration.counts import truth_rows
    from edge_app.datasets.motchallenge import read_seqinfo
    from edge_app.config.schema import LineConfig
    d = seq_dir(seq)
    info = read_seqinfo(d / "seqinfo.ini")
    g = truth_rows(d / "gt" / "gt.txt")
    lines = []
    for q in at:
        mx = float(np.quantile(g.boxes[:, 0] + g.boxes[:, 2] / 2, q))
        my = float(np.quantile(g.boxes[:, 1] + g.boxes[:, 3], q))
        mx, my = min(max(mx, 1.0), info.width - 1.0), min(max(my, 1.0), info.height - 1.0)
        tag = "" if q == 0.5 else f"-{round(100 * q)}"
        lines += [LineConfig(name="vertical" + tag, points=((mx, 0.0), (mx, float(info.height))), margin=margin),
                  LineConfig(name="horizontal" + tag, points=((0.0, my), (float(info.width), my)), margin=margin)]
    return info, lines


# every repair off unless a rule turns it on (the runtime's defaults may turn them on)
BARE = {"memory_s": 0.0, "memory_radius": 0.5, "count_at_start": False, "count_at_end": False}


def _analytics(rule: dict[str, Any]) -> Any:
    from edge_app.config.schema import AnalyticsConfig
    return replace(AnalyticsConfig(), **{**BARE, **{k: v for k, v in rule.items() if k != "margin"}})


def count_job(job: tuple[str, str, str, list[dict[str, Any]]]) -> tuple[str, str, dict[str, dict]]:
    """Count errors of one tracks file under each rule: {rule key: {error, true (the median lines), error6,
    true6 (the six quantile lines), track_ids, true_ids, lines}}."""
    from calibration.counts import evaluate_counts
    who, seq, tracks, rules = job
    out = {}
    for rule in rules:
        info, lines = lines_of(seq, rule["margin"], QUANTILES)
        r = evaluate_counts(seq_dir(seq) / "gt" / "gt.txt", tracks, lines, [], info.width, info.height, info.frame_rate,
                            max_gap_s=60.0, rule=_analytics(rule))
        median = {k: v for k, v in r["lines"].items() if k in ("vertical", "horizontal")}
        out[rule_key(rule)] = {"error": sum(v["error"] for v in median.values()),
                               "true": sum(v["truth_in"] + v["truth_out"] for v in median.values()),
                               "error6": sum(v["error"] for v in r["lines"].values()), "true6": r["true_crossings"],
                               "track_ids": r["track_ids"], "true_ids": r["true_ids"], "lines": median}
    return who, seq, out


def decompose_job(job: tuple[str, str, str, dict[str, Any]]) -> tuple[str, str, dict]:
    """Misses and extras by cause (calibration.count_errors) of one tracks file under one rule."""
    from calibration.count_errors import decompose_files
    who, seq, tracks, rule = job
    info, lines = lines_of(seq, rule["margin"])
    r = decompose_files(seq_dir(seq) / "gt" / "gt.txt", tracks, lines, info.width, info.height, info.frame_rate,
                        60.0, _analytics(rule))
    r.pop("events")
    return who, seq, r


def choose(per: dict[str, dict[str, dict]], seqs: list[str], rules: list[dict[str, Any]]) -> dict[str, dict]:
    """Leave-one-sequence-out: for each sequence the rule with the least error share on the others' six
    quantile lines."""
    out = {}
    for seq in seqs:
        others = [s for s in seqs if s != seq]

        def score(rule: dict[str, Any]) -> tuple[float, str]:
            k = rule_key(rule)
            return (sum(per[o][k]["error6"] for o in others) / max(1, sum(per[o][k]["true6"] for o in others)), k)
        out[seq] = min(rules, key=score)
    return out


def default_rule(per: dict[str, dict[str, dict]], seqs: list[str], chosen: dict[str, dict]) -> tuple[dict, int]:
    """The rule most folds chose (a tie: the least mean error share on the folds' training sequences), and
    how many folds chose it: the runtime's default, as the tracker's."""
    votes: dict[str, int] = {}
    for rule in chosen.values():
        votes[rule_key(rule)] = votes.get(rule_key(rule), 0) + 1
    top = max(votes.values())

    def train(key: str) -> float:
        folds = [s for s in seqs if rule_key(chosen[s]) == key]
        return sum(sum(per[o][key]["error6"] for o in seqs if o != s) / max(1, sum(per[o][key]["true6"] for o in seqs
                                                                                 if o != s)) for s in folds) / len(folds)
    best = min((k for k, v in votes.items() if v == top), key=lambda k: (train(k), k))
    return next(r for r in chosen.values() if rule_key(r) == best), top


def runtime_rule(default: dict[str, Any], votes: int) -> tuple[dict[str, Any], str]:
    """The rule the runtime should ship: the protocol's pick when a strict majority of folds chose it, else
    the one it has (RUNTIME_RULE), and why."""
    if votes >= MAJORITY:
        return default, f"the protocol's pick, chosen by {votes} folds (a majority: at least {MAJORITY})"
    return RUNTIME_RULE, (f"kept: the protocol's pick was chosen by {votes} folds only, fewer than the "
                          f"{MAJORITY} that may change it")


def share(per: dict[str, dict], seqs: list[str], six: bool = False) -> float:
    e, t = ("error6", "true6") if six else ("error", "true")
    return sum(per[s][e] for s in seqs) / max(1, sum(per[s][t] for s in seqs))


def tables(r: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """The README's counting tables (markdown)."""
    seqs = r["sequences"]
    m17 = [s for s in seqs if s in proto.MOT17]
    chosen = r["count_rule_chosen"]
    md = ["", "Counting (a vertical and a horizontal line through the median anchor of each sequence; summed |count "
          "error| / true crossings, out-of-sample: our live tracks of each fold, the rule chosen on the other six "
          "sequences; every tracker's tracks counted by that same rule; ids: track ids / true identities). "
          "Rule per fold: " + "; ".join(f"{s.replace('-FRCNN', '')} {rule_key(chosen[s])}" for s in seqs)
          + f". The protocol's pick (chosen by {r['count_rule_votes']} of {len(seqs)} folds; a tie: the least "
          f"training error): {rule_key(r['count_rule_default'])}. The runtime's rule: "
          f"{rule_key(r['count_rule_runtime'])} ({r['count_rule_runtime_why']}).", "",
          "| tracker | MOT17 count error | all count error | MOT17, six lines | all, six lines | MOT17 misses + extras "
          "| MOT17 ids ratio | all ids ratio |",
          "|---|---|---|---|---|---|---|---|"]
    for who, per in r["counts"].items():
        dec = r["decomposition"].get(who, {})
        gross = (sum(sum(dec[s]["misses"].values()) + sum(dec[s]["extras"].values()) for s in m17)
                 / max(1, sum(dec[s]["true_crossings"] for s in m17))) if dec else float("nan")
        ids4 = sum(per[s]["track_ids"] for s in m17) / max(1, sum(per[s]["true_ids"] for s in m17))
        ids7 = sum(per[s]["track_ids"] for s in seqs) / max(1, sum(per[s]["true_ids"] for s in seqs))
        md.append(f"| {labels[who]} | {100 * share(per, m17):.1f} % | {100 * share(per, seqs):.1f} % | "
                  f"{100 * share(per, m17, True):.1f} % | {100 * share(per, seqs, True):.1f} % | "
                  f"{100 * gross:.1f} % | {ids4:.2f} | {ids7:.2f} |")
    per = r["counts_runtime_rule"]  # our held-out live tracks, counted by the rule the runtime ships
    md.append(f"| {labels['ours']}, the runtime's rule | {100 * share(per, m17):.1f} % | {100 * share(per, seqs):.1f} % | "
              f"{100 * share(per, m17, True):.1f} % | {100 * share(per, seqs, True):.1f} % | | | |")
    for who in ("ours", "trackers-bytetrack"):
        per = r["counts_plain"][who]
        md.append(f"| {labels[who]}, a bare line (no margin, no repairs) | {100 * share(per, m17):.1f} % | "
                  f"{100 * share(per, seqs):.1f} % | {100 * share(per, m17, True):.1f} % | "
                  f"{100 * share(per, seqs, True):.1f} % | | | |")
    md += ["", "Each change of the counting rule alone, out-of-sample (LOSO over its own settings and the margins, "
           "on our live tracks):", "", "| rule | MOT17 count error | all count error | MOT17, six lines | all, six lines |",
           "|---|---|---|---|---|"]
    for family, c in r["count_rule_changes"].items():
        md.append(f"| {family} | {100 * c['MOT17']:.1f} % | {100 * c['all']:.1f} % | {100 * c['MOT17_6']:.1f} % | "
                  f"{100 * c['all_6']:.1f} % |")
    from calibration.count_errors import EXTRA_CAUSES, MISS_CAUSES
    md += ["", "Where the count error comes from (MOT17, the four sequences summed; out-of-sample tracks and rule): "
           "each true crossing no track counted (a miss) and each counted crossing the truth did not make (an "
           "extra), by cause (`calibration/count_errors.py`); misses and extras of one line and direction cancel "
           "in the count error.", "",
           "| tracker | true crossings | counted right | " + " | ".join(f"miss: {c}" for c in MISS_CAUSES) + " | "
           + " | ".join(f"extra: {c}" for c in EXTRA_CAUSES) + " | net error |",
           "|---|" + "---|" * (3 + len(MISS_CAUSES) + len(EXTRA_CAUSES))]
    for who, dec in r["decomposition"].items():
        tot = {k: sum(dec[s][k] for s in m17) for k in ("true_crossings", "matched", "error")}
        miss = {c: sum(dec[s]["misses"][c] for s in m17) for c in MISS_CAUSES}
        extra = {c: sum(dec[s]["extras"][c] for s in m17) for c in EXTRA_CAUSES}
        md.append(f"| {labels[who]} | {tot['true_crossings']} | {tot['matched']} | "
                  + " | ".join(str(miss[c]) for c in MISS_CAUSES) + " | " + " | ".join(str(extra[c]) for c in EXTRA_CAUSES)
                  + f" | {tot['error']} |")
    return md
