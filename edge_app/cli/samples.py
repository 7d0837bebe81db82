"""``edge-app samples export --format voc|coco OUT``: the frames reviewed on the /review page as a dataset
(``review.export``), for ``edge-app calibrate --data`` (thresholds from live frames) and ``edge-app train
--data ... --weights <current>`` (fine-tuning on them)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..config import ConfigError, load_config
from .errors import fail


def main(args: argparse.Namespace) -> int:
    from ..review.export import export

    if args.samples:
        samples = Path(args.samples)
    else:
        try:
            cfg = load_config(args.config)
        except (ConfigError, OSError) as exc:
            return fail("samples export", f"{exc} (or name the folder with --samples)")
        samples = cfg.state(cfg.labels.samples_dir)
    try:
        done = export(samples, Path(args.out), args.format)
    except (ValueError, FileExistsError, OSError) as exc:
        return fail("samples export", f"{exc}")
    print(json.dumps(done))
    seg = " (masks: --task segmentation)" if done["masks"] else ""
    print(f"{done['samples']} reviewed frames, {done['boxes']} boxes, {done['masks']} masks -> {done['out']}\n"
          f"  thresholds from them: edge-app calibrate --data {done['data']}{seg}\n"
          f"  fine-tune on them:    edge-app train --data {done['data']} --weights <current model>", file=sys.stderr)
    return 0
