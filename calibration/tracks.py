"""``edge-app evaluate-tracks --gt gt.txt --tracks tracks.txt``: HOTA, DetA, AssA, MOTA, IDF1, ID switches
of MOT-format tracks, computed by TrackEval (the MOTChallenge reference implementation) with the
MOTChallenge rules: its preprocessing removes tracker boxes matched to distractor classes and ground truth
rows marked zero (conf 0) before matching. MOT15 ground truth (no classes) is evaluated as MOT15 is: no
preprocessing. Prints one JSON object; fractions 0..1, IDSW a count.

TrackEval is installed with ``--no-deps`` (``make test`` does it): its wheel asks for opencv-python, which
would clash with the project's opencv-python-headless.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.datasets.motchallenge import MotFormatError, read_mot, read_seqinfo
from edge_app.cli.errors import fail

METRIC_KEYS = ("HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1", "IDP", "IDR", "IDSW", "Frag", "MT", "ML",
               "CLR_TP", "CLR_FN", "CLR_FP")


def _trackeval() -> Any:
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints about optional datasets on import
            import trackeval
    except ImportError:
        raise SystemExit("evaluate-tracks needs TrackEval: pip install --no-deps trackeval (make test installs "
                         "it; --no-deps: its opencv-python would clash with opencv-python-headless)") from None
    return trackeval


def _seq_length(gt: Path, tracks: Path, seqinfo: Path | None) -> tuple[int, Path | None]:
    info = seqinfo or (gt.parent.parent / "seqinfo.ini")
    if info.is_file():
        return read_seqinfo(info).length, info
    last = max(read_mot(gt).frame_range()[1], read_mot(tracks).frame_range()[1], 1)
    return last, None


def evaluate_tracks(gt: str | Path, tracks: str | Path, seqinfo: str | Path | None = None,
                    benchmark: str | None = None) -> dict[str, Any]:
    """TrackEval's HOTA / CLEAR / Identity of one sequence; the files are validated first (file and line)."""
    gt, tracks = Path(gt), Path(tracks)
    g = read_mot(gt, min_columns=7)   # malformed rows are named here, not deep in TrackEval
    read_mot(tracks)
    length, info = _seq_length(gt, tracks, Path(seqinfo) if seqinfo else None)
    if benchmark is None:  # MOT16/17 gt: 9 columns (..., conf, class, visibility); MOT15: 10 (..., x, y, z)
        benchmark = "MOT17" if g.extra.shape[1] == 2 else "MOT15"
    te = _trackeval()
    seq = "seq"
    with tempfile.TemporaryDirectory(prefix="edge-trackeval-") as tmp:
        root = Path(tmp)
        (root / "gt" / seq / "gt").mkdir(parents=True)
        (root / "gt" / seq / "gt" / "gt.txt").write_text(gt.read_text())
        (root / "gt" / seq / "seqinfo.ini").write_text(
            f"[Sequence]\nname={seq}\nseqLength={length}\n" if info is None else info.read_text())
        (root / "trk" / "ours" / "data").mkdir(parents=True)
        (root / "trk" / "ours" / "data" / f"{seq}.txt").write_text(tracks.read_text())
        dataset_cfg = {"GT_FOLDER": str(root / "gt"), "TRACKERS_FOLDER": str(root / "trk"),
                       "OUTPUT_FOLDER": str(root / "out"), "TRACKERS_TO_EVAL": ["ours"], "BENCHMARK": benchmark,
                       "SKIP_SPLIT_FOL": True, "SEQ_INFO": {seq: length}, "PRINT_CONFIG": False,
                       "DO_PREPROC": benchmark != "MOT15"}
        eval_cfg = {"USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_ONLY_COMBINED": False,
                    "PRINT_CONFIG": False, "TIME_PROGRESS": False, "DISPLAY_LESS_PROGRESS": True,
                    "OUTPUT_SUMMARY": False, "OUTPUT_EMPTY_CLASSES": False, "OUTPUT_DETAILED": False,
                    "PLOT_CURVES": False, "BREAK_ON_ERROR": True, "RETURN_ON_ERROR": False}
        with contextlib.redirect_stdout(io.StringIO()):
            evaluator = te.Evaluator(eval_cfg)
            dataset = te.datasets.MotChallenge2DBox(dataset_cfg)
            metrics = [te.metrics.HOTA(), te.metrics.CLEAR(), te.metrics.Identity()]
            results, _ = evaluator.evaluate([dataset], metrics)
    r = results["MotChallenge2DBox"]["ours"][seq]["pedestrian"]
    out: dict[str, Any] = {}
    for group in ("HOTA", "CLEAR", "Identity"):
        for key, value in r[group].items():
            if key in METRIC_KEYS:
                v = np.asarray(value, np.float64)
                out[key] = float(v.mean()) if v.ndim else (int(v) if key in ("IDSW", "Frag", "MT", "ML", "CLR_TP",
                                                                              "CLR_FN", "CLR_FP") else float(v))
    ordered = {k: out[k] for k in METRIC_KEYS if k in out}
    return {**ordered, "frames": length, "benchmark_rules": benchmark, "evaluator": f"TrackEval {_version(te)}"}


def _version(te: Any) -> str:
    try:
        from importlib.metadata import version
        return version("trackeval")
    except Exception:
        return getattr(te, "__version__", "?")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="edge-app evaluate-tracks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gt", required=True, help="MOTChallenge gt.txt")
    p.add_argument("--tracks", required=True, help="MOT-format tracks (edge-app track --out)")
    p.add_argument("--seqinfo", help="seqinfo.ini (default: beside gt/, else the last frame in the files)")
    p.add_argument("--benchmark", choices=("MOT15", "MOT16", "MOT17", "MOT20"),
                   help="evaluation rules (default: MOT17 when gt has classes, else MOT15)")
    a = p.parse_args(argv)
    try:
        result = evaluate_tracks(a.gt, a.tracks, a.seqinfo, a.benchmark)
    except MotFormatError as exc:
        return fail("evaluate-tracks", f"{exc}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
