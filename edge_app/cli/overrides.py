"""``edge-app run [INPUT] [OUTPUT ...] [--model ARTIFACT ...]``: a config from the command line, the way
jetson-inference's ``detectnet csi://0 rtsp://@:8554/live`` works.

The arguments become tables of the config document *before* it is parsed, so they get exactly the
config's validation and error messages (every problem at once, each naming its key), plus the argument
it came from. INPUT replaces ``[source].uri``; OUTPUTs, when given, replace the config's outputs (those
not named are off for this run); ``--model`` replaces the config's models (kind, classes and everything
else come from the artifact's own metadata; a ``<stem>.thresholds.json`` beside it is used).

``@`` as the host means all interfaces: the HTTP view then needs a token, as the config requires
(``output.http.token`` in the config, or ``EDGE_APP_HTTP_TOKEN`` for a config-less run: never on the
command line, where ``ps`` shows it), and an RTSP bind needs ``output.rtsp.allow_remote``.
"""
from __future__ import annotations

import copy
import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..config import AppConfig, ConfigError, validate, with_source_defaults
from ..config.loader import parse, read_toml
from ..config.schema import SOURCE_SCHEMES
from ..core.uri import as_uri

ALL_INTERFACES = "0.0.0.0"
TOKEN_ENV = "EDGE_APP_HTTP_TOKEN"
OUTPUT_FORMS = ("http://HOST:PORT, rtsp://HOST:PORT/PATH, file:///PATH.mp4 (HOST '@' = all interfaces) or "
                "mqtt://[USER:PASS@]BROKER[:PORT][/PREFIX] (events for a fleet)")
_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def input_uri(value: str, cwd: Path) -> str:
    """INPUT as a source URI (``core.uri.as_uri``, relative paths from the current folder)."""
    return as_uri(value, cwd)


def _host(netloc: str) -> tuple[str, int | None]:
    """(host, port) of a netloc where '@' alone (or '@:PORT') means all interfaces."""
    if netloc.startswith("@"):
        netloc = ALL_INTERFACES + netloc[1:]
    parts = urlsplit(f"//{netloc}")
    return parts.hostname or ALL_INTERFACES, parts.port


def output_tables(values: list[str], cwd: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """OUTPUT arguments -> ({http|rtsp|record: table}, problems)."""
    tables: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for value in values:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        rest = value.split("://", 1)[1] if "://" in value else ""
        try:
            if scheme == "http":
                netloc = rest.split("/", 1)[0]
                host, port = _host(netloc)
                table: dict[str, Any] = {"enabled": True, "host": host, "port": 8080 if port is None else port}
                token = os.environ.get(TOKEN_ENV)
                if token:
                    table["token"] = token
                tables["http"] = table
            elif scheme == "rtsp":
                netloc, _, path = rest.partition("/")
                host, port = _host(netloc)
                tables["rtsp"] = {"enabled": True, "host": host, "port": 8554 if port is None else port,
                                  "path": "/" + (path or "live")}
            elif scheme == "file":
                target = Path(rest) if rest.startswith("/") else (cwd / rest)
                if target.suffix.lower() not in (".mp4", ".mkv"):
                    problems.append(f"OUTPUT {value!r}: expected a video file name ending in .mp4")
                    continue
                tables["record"] = {"enabled": True, "directory": str(target.resolve().parent),
                                    "file": target.name}
            elif scheme in ("mqtt", "mqtts"):  # events (and the retained status) to a broker, for a fleet
                from ..core.uri import parse_url
                parse_url(value.split("/", 3)[0] + "//" + rest.split("/", 1)[0])  # checks the host and port
                prefix = rest.split("/", 1)[1].strip("/") if "/" in rest else ""
                tables["mqtt"] = {"enabled": True, "url": value.rsplit("/", 1)[0] if prefix else value,
                                  **({"topic_prefix": prefix} if prefix else {})}
            else:
                problems.append(f"OUTPUT {value!r}: expected {OUTPUT_FORMS}")
        except ValueError as exc:  # urlsplit: a port that is not a number
            problems.append(f"OUTPUT {value!r}: {exc}; expected {OUTPUT_FORMS}")
    return tables, problems


def model_tables(artifacts: list[str], cwd: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """--model ARTIFACT -> {name: [models.NAME] table}: kind from the artifact's task."""
    from ..core.artifact import ArtifactError, read_meta

    tables: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for value in artifacts:
        path = (cwd / value).resolve()
        try:
            meta = read_meta(path, verify_checksum=False)
        except (ArtifactError, OSError) as exc:
            problems.append(f"--model {value!r}: {exc}")
            continue
        name = _NAME.sub("-", path.stem).strip("-") or "model"
        if not name[0].isalpha():
            name = f"m-{name}"
        while name in tables:
            name += "-2"
        table: dict[str, Any] = {"kind": "detector" if meta.task == "detection" else "segmenter",
                                 "artifact": str(path)}
        thresholds = path.with_name(f"{path.stem}.thresholds.json")
        if meta.task == "detection" and thresholds.is_file():
            table["thresholds_file"] = str(thresholds)
        tables[name] = table
    return tables, problems


# What runs on real footage named on the command line without --model: the shipped COCO detector (people,
# vehicles, ... tracked), never the synthetic shapes models of config.toml (those are for synthetic://).
COCO_DETECTOR = Path(__file__).resolve().parents[1] / "demo" / "coco.onnx"
VEHICLES = ["car", "truck", "bus", "motorcycle"]


def real_world_models() -> dict[str, dict[str, Any]]:
    """The [models] of a config-less run on real footage: the COCO detector, its calibrated thresholds and
    precision, vehicles as one class group, tracked; people, bicycles and vehicles reported (as Frigate
    tracks person by default: the other 70-odd COCO classes are mostly noise on a street or a shop)."""
    table: dict[str, Any] = {"kind": "detector", "artifact": str(COCO_DETECTOR), "class_groups": {"vehicle": VEHICLES},
                             "keep": ["person", "bicycle", "vehicle"], "tracker": {"enabled": True}}
    thresholds = COCO_DETECTOR.with_name(f"{COCO_DETECTOR.stem}.thresholds.json")
    if thresholds.is_file():
        table["thresholds_file"] = str(thresholds)
    return {"coco": table}


def fit_geometry(data: dict[str, Any], models: set[str]) -> list[str]:
    """--model replaced the config's models: lines and zones that name a model not run now are dropped
    (said on stderr, never a refusal of the run), and the detectors given are tracked when lines or zones
    remain to count on. Returns what was dropped ("analytics.lines.door", ...)."""
    sections = [("analytics", data.get("analytics"))]
    sections += [(f"streams.{s.get('name')}.analytics", s.get("analytics")) for s in data.get("streams") or []
                 if isinstance(s, dict)]
    dropped, kept = [], 0
    for where, section in sections:
        if not isinstance(section, dict):
            continue
        for kind in ("lines", "zones"):
            items = section.get(kind)
            if not isinstance(items, list):
                continue
            fits = [i for i in items if not isinstance(i, dict) or not i.get("model") or i["model"] in models]
            dropped += [f"{where}.{kind}.{i.get('name')}" for i in items if i not in fits]
            section[kind] = fits
            kept += len(fits)
    if dropped:
        print(f"edge-app run: --model replaces the config's models; not counted in this run (they name another "
              f"model): {', '.join(dropped)}", file=sys.stderr)
    if kept:
        for table in data["models"].values():
            if table.get("kind") == "detector":
                table.setdefault("tracker", {"enabled": True})
    return dropped


def default_state_dir() -> Path:
    """Where a run without a config file writes: systemd's StateDirectory, else the XDG state folder."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "edge-app"


def shape_tables(data: dict[str, Any], lines: list[str], zones: list[str]) -> list[str]:
    """--line / --zone (``NAME:x1,y1,x2,y2``, pixels or 0..1 of the frame; the parser of edge-app track and
    evaluate-counts) into the source's [analytics] of ``data`` (frame size already resolved); the detectors
    that run are tracked. Returns the problems, naming the argument."""
    from ..config.shapes import parse_shape

    if not (lines or zones):
        return []
    if data.get("streams"):
        return [f"--line/--zone: the config has [[streams]]; draw them on the page (its editor saves each "
                "stream's) or write [[streams.analytics.lines]]"]
    raw = data.get("source")
    source: dict[str, Any] = raw if isinstance(raw, dict) else {}
    width, height = int(source.get("width", 640)), int(source.get("height", 480))
    analytics = data.setdefault("analytics", {})
    problems = []
    for kind, values in (("line", lines), ("zone", zones)):
        for text in values:
            try:
                shape = parse_shape(text, kind, width, height, frame_from=f"the {width}x{height} frame")
            except ValueError as exc:
                problems.append(str(exc))
                continue
            analytics.setdefault(f"{kind}s", []).append({"name": shape.name, "points": [list(p) for p in shape.points],
                                                         "units": shape.units})
    for table in (data.get("models") or {}).values():  # counting needs tracks
        if isinstance(table, dict) and table.get("kind") == "detector":
            tracker = table.setdefault("tracker", {})
            if isinstance(tracker, dict):
                tracker.setdefault("enabled", True)
    return problems


def run_config(config: str | Path | None, input: str | None = None, outputs: list[str] | None = None,
               models: list[str] | None = None, cwd: Path | None = None, required: bool = True,
               state_dir: str | Path | None = None, lines: list[str] | None = None,
               zones: list[str] | None = None) -> AppConfig:
    """The config of this run: the file (if any) with the command line's INPUT, OUTPUTs and models put in.
    ``required=False``: a missing file is fine when INPUT or --model say what to run (defaults for the rest);
    then real footage as INPUT (not synthetic://) without --model runs the COCO detector (``real_world_models``).
    Raises ConfigError with every problem (the file's and the arguments')."""
    cwd = Path.cwd() if cwd is None else cwd
    outputs, models = outputs or [], models or []
    path = Path(config) if config is not None else None
    data: dict[str, Any] = {}
    if path is not None and path.is_file():
        data = copy.deepcopy(read_toml(path))
    elif path is not None and (required or not (input or models)):
        read_toml(path)  # raises "file not found" naming it
    problems: list[str] = []
    if input:
        uri = input_uri(input, cwd)
        scheme = uri.split("://", 1)[0]
        if scheme not in SOURCE_SCHEMES:
            problems.append(f"INPUT {input!r}: expected a source URI ({', '.join(s + '://' for s in SOURCE_SCHEMES)}) "
                            "or a path to a video file, a dataset folder or /dev/videoN")
        if data.get("streams"):  # one INPUT cannot say which of several cameras it replaces
            problems.append(f"INPUT {input!r}: the config has [[streams]]; run INPUT with a config without "
                            "them, or add it as a stream (POST /api/streams, or a [[streams]] table)")
        data.setdefault("source", {})
        if isinstance(data["source"], dict):
            data["source"]["uri"] = uri
    if outputs:
        tables, errs = output_tables(outputs, cwd)
        problems += errs
        out = data.setdefault("output", {})
        if isinstance(out, dict):
            for kind in ("http", "rtsp", "record"):
                section = out.setdefault(kind, {})
                if isinstance(section, dict):
                    # a named output keeps the config's other settings (token, allow_remote, quality,
                    # bitrate, segment length); one not named is off for this run
                    section.update(tables.get(kind, {"enabled": False}))
            if "mqtt" in tables and isinstance(out.setdefault("mqtt", {}), dict):
                out["mqtt"].update(tables["mqtt"])  # events are no video output: named, they go on; else as configured
    if models:
        tables_m, errs = model_tables(models, cwd)
        problems += errs
        data["models"] = tables_m
        fit_geometry(data, set(tables_m))
    elif input and not required and not input_uri(input, cwd).startswith("synthetic://"):
        data["models"] = real_world_models()
        for section in [data.get("analytics")] + [s for s in data.get("streams", []) if isinstance(s, dict)]:
            if isinstance(section, dict):  # the shapes scene's lines and zones do not fit other footage
                section.pop("lines", None)
                section.pop("zones", None)
    base = path.resolve().parent if path is not None and path.is_file() else cwd
    if state_dir is not None or base is cwd:  # a config-less run never writes into the current folder
        runtime = data.setdefault("runtime", {})
        if isinstance(runtime, dict):
            runtime["state_dir"] = str((cwd / state_dir).resolve() if state_dir is not None else default_state_dir())
    data = with_source_defaults(data, base)
    problems += shape_tables(data, lines or [], zones or [])
    cfg, parse_problems = parse(AppConfig, data)
    object.__setattr__(cfg, "base_dir", base)
    problems += parse_problems + validate(cfg, data)
    if problems:
        raise ConfigError(problems, str(path) if path is not None and path.is_file() else "command line")
    return cfg
