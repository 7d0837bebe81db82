"""``edge-app`` / ``python -m edge_app``: one command line for every job of the project.

Each subcommand's handler lives in the package that does the job and is imported only when that
subcommand runs, so ``edge-app run`` on the device never imports torch.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from .cli.errors import fail

@dataclass(frozen=True)
class Command:
    help: str
    handler: str  # "module:function" taking the parsed args (or argv when passthrough), returning an exit code
    arguments: Callable[[argparse.ArgumentParser], None]
    passthrough: bool = False  # the handler parses its own arguments (its --help is the full one)


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="config.toml", help="configuration file (default: %(default)s)")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", nargs="?", help="source URI for this run (csi://0, v4l2:///dev/video0, rtsp://..., "
                   "file:///video.mp4, replay:///dataset, synthetic://; or a path): replaces [source].uri")
    p.add_argument("outputs", nargs="*", metavar="output", help="http://@:8080, rtsp://@:8554/live, "
                   "file:///path/out.mp4 ('@' = all interfaces): replace the config's outputs for this run")
    p.add_argument("--model", action="append", metavar="ARTIFACT",
                   help="run this ONNX artifact (repeatable): replaces the config's models")
    p.add_argument("--line", action="append", default=[], metavar="NAME:x1,y1,x2,y2",
                   help="count crossings of this line (pixels, or 0..1 of the frame: door:0.5,0,0.5,1; 'in' is "
                   "to the left of the direction from the first point to the second); repeatable")
    p.add_argument("--zone", action="append", default=[], metavar="NAME:x1,y1,x2,y2,x3,y3,...",
                   help="count entries, exits and occupancy of this polygon (pixels or 0..1); repeatable")
    p.add_argument("--config", help="configuration file (default: config.toml, which may be absent when INPUT "
                   "and --model say what to run)")
    p.add_argument("--log-format", choices=("auto", "text", "json"), default="auto",
                   help="console: text (a short line every few seconds) or JSON lines; auto = text on a "
                   "terminal, JSON otherwise (journald). The log file is always JSON")
    p.add_argument("--state-dir", help="where everything this run writes goes (samples, inbox, events, log, "
                   "recordings; default: the config's runtime.state_dir, var/ next to it; without a config file "
                   "$STATE_DIRECTORY (systemd) or ~/.local/state/edge-app: never the current folder)")
    p.add_argument("--max-seconds", type=float, help="stop after this many seconds (tests, benchmarks)")


def _passthrough(p: argparse.ArgumentParser) -> None:
    """The command parses its own options (``edge-app COMMAND --help`` shows them)."""


def _config_check_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", default="config.toml", help="configuration file (default: %(default)s)")


def _doctor_args(p: argparse.ArgumentParser) -> None:
    _config_arg(p)
    p.add_argument("--json", action="store_true", help="the rows as JSON")


def _inspect_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("artifact", help="an FP32 ONNX artifact (its variants, thresholds and engines are found beside it)")
    p.add_argument("--engine-dir", help="where TensorRT engines are (default: var/engines, then beside the artifact)")
    p.add_argument("--json", action="store_true", help="everything as one JSON object")


def _samples_export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="a new folder for the dataset")
    p.add_argument("--format", choices=("voc", "coco"), default="voc", help="label format (default: %(default)s)")
    p.add_argument("--config", default="config.toml", help="the config whose labels.samples_dir holds the samples")
    p.add_argument("--samples", help="the samples folder itself (instead of --config)")


def _service_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("install", "uninstall"))
    p.add_argument("--user", default="edge-app", help="service user (default: %(default)s)")
    p.add_argument("--config", default="/etc/edge-app/config.toml", help="installed config path")
    p.add_argument("--dry-run", action="store_true", help="print what would be done")
    p.add_argument("--root", help="install into this root folder instead of / (no systemctl, no useradd)")
    p.add_argument("--source-config", default="config.toml",
                   help="config copied to --config when that does not exist yet (default: %(default)s)")


COMMANDS: dict[str, Command] = {
    "run": Command("run the live pipeline: capture, detect + segment, overlay, stream, rolling P/R",
                   "edge_app.cli.run:main", _run_args),
    "doctor": Command("what this machine can run: GStreamer elements, ONNX Runtime, TensorRT, cameras, "
                      "models, ports, disk (exit 0 when the config can run)", "edge_app.cli.doctor:main",
                      _doctor_args),
    "inspect": Command("what an artifact says about itself: classes, input, precisions, thresholds, "
                       "validation, engines", "edge_app.cli.inspect:main", _inspect_args),
    "train": Command("train SSD-MobileNet / U-Net / DeepLabv3 with transfer learning (needs [train])",
                     "conversion.train:main", _passthrough, passthrough=True),
    "export": Command("export a trained model to ONNX with its metadata and a parity check (needs [train])",
                      "conversion.export:main", _passthrough, passthrough=True),
    "import": Command("a pretrained TF Object Detection API SSD (.pb) as an ONNX artifact with our decoder, "
                      "parity-checked against TensorFlow (needs [import])", "conversion.importers.command:main",
                      _passthrough, passthrough=True),
    "build": Command("make FP16 / INT8 artifacts (accuracy-gated) and TensorRT engines from an FP32 ONNX",
                     "conversion.build:main", _passthrough, passthrough=True),
    "calibrate": Command("evaluate deployed artifacts, compare precisions, pick thresholds (needs [eval])",
                         "calibration.calibrate:main", _passthrough, passthrough=True),
    "evaluate": Command("COCO metrics of a results JSON against a ground-truth JSON (prints one JSON object)",
                        "calibration.coco:main", _passthrough, passthrough=True),
    "track": Command("the runtime's tracker (and detector, lines, zones) over MOTChallenge detections or a "
                     "video, written as MOT tracks",
                     "edge_app.cli.track:main", _passthrough, passthrough=True),
    "evaluate-tracks": Command("HOTA, IDF1, MOTA, ID switches of MOT tracks (TrackEval, MOTChallenge rules)",
                               "calibration.tracks:main", _passthrough, passthrough=True),
    "evaluate-counts": Command("line crossings and zone entries of MOT tracks vs the same rule on the ground "
                               "truth's identities (prints one JSON object)", "calibration.counts:main",
                               _passthrough, passthrough=True),
    "fleet": Command("one view over many devices: presence, status, rolling P/R, counts, events with "
                     "snapshots, from MQTT (page, /api/fleet, /metrics)", "edge_app.cli.fleet:main", _passthrough,
                     passthrough=True),
    "config check": Command("validate a config file; prints every problem, exits non-zero on any",
                            "edge_app.config.check:main", _config_check_args),
    "samples export": Command("the frames reviewed on /review as a VOC or COCO dataset (for calibrate --data, "
                              "train --data)", "edge_app.cli.samples:main", _samples_export_args),
    "service": Command("install or uninstall the systemd unit",
                       "edge_app.cli.service:main", _service_args),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-app", description="edge-vision: detection + segmentation on edge devices, "
        "from labelled images to a live annotated stream.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for name, cmd in COMMANDS.items():
        text = cmd.help
        if " " in name:
            group, leaf = name.split(" ", 1)
            if group not in groups:
                gp = sub.add_parser(group, help=f"{group} commands: {leaf}", description=f"{group} commands")
                groups[group] = gp.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
            p = groups[group].add_parser(leaf, help=text, description=text)
        elif cmd.passthrough:
            p = sub.add_parser(name, help=text, description=text, add_help=False)
        else:
            p = sub.add_parser(name, help=text, description=text)
        cmd.arguments(p)
        p.set_defaults(_command=name)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    name = getattr(args, "_command", None)
    if name is None:
        parser.print_help()
        return 2
    cmd = COMMANDS[name]
    if extra and not cmd.passthrough:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    module, func = cmd.handler.split(":")
    try:
        handler: Callable[[Any], int] = getattr(importlib.import_module(module), func)
    except ImportError as exc:  # e.g. torch missing for train: the message names the extra
        return fail(name, exc)
    return int(handler(extra if cmd.passthrough else args) or 0)


if __name__ == "__main__":
    sys.exit(main())
