"""``config.toml`` parsed once into frozen dataclasses (the composition root hands out the parts).

``load_config(path)`` raises ``ConfigError`` listing every problem, each naming its key path.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import re
from pathlib import Path
from typing import Any

from ..core.uri import as_uri, flag, local_path, resolved_path, scheme_of
from .loader import ConfigError, field_docs, parse, read_toml
from .schema import (SOURCE_SCHEMES, AnalyticsConfig, AppConfig, HttpConfig, LabelsConfig, LineConfig, LoggingConfig, ModelConfig,
                     OutputConfig, RecordConfig, RollingConfig, RtspConfig, RuntimeConfig, SourceConfig, StreamConfig,
                     ZoneConfig)

__all__ = ["AppConfig", "ConfigError", "HttpConfig", "LabelsConfig", "LoggingConfig", "ModelConfig",
           "OutputConfig", "RecordConfig", "RollingConfig", "RtspConfig", "RuntimeConfig", "SourceConfig", "StreamConfig",
           "field_docs", "is_loopback", "load_config", "model_tiles", "parse_stream", "source_path", "stream_problems",
           "with_source_defaults"]

_MODEL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def load_config(path: str | Path) -> AppConfig:
    """Read, parse and validate a config file. Relative paths inside are relative to its folder."""
    path = Path(path)
    data = read_toml(path)
    cfg, problems = parse(AppConfig, with_source_defaults(data, path.resolve().parent))
    object.__setattr__(cfg, "base_dir", path.resolve().parent)
    problems += validate(cfg, data)
    if problems:
        raise ConfigError(problems, str(path))
    return cfg


def with_source_defaults(data: dict[str, Any], base: Path | None = None) -> dict[str, Any]:
    """The one step before parsing, for every reader of a config (the file, the command line, doctor):
    - a source written as a path (``uri = "clip.mp4"``, a folder, ``/dev/video0``) becomes its URI, as on
      the command line (relative to ``base``, the config's folder);
    - [source]'s keys (its uri excepted) are the defaults of every [[streams]] table: a frame size or
      reconnect policy is written once for all cameras;
    - a video file with no width/height set anywhere runs at its own size (``sources.probe``)."""
    data = dict(data)
    source = data.get("source")
    streams = data.get("streams")
    if base is not None:
        if isinstance(source, dict) and isinstance(source.get("uri"), str):
            data["source"] = source = {**source, "uri": as_uri(source["uri"], base)}
        if isinstance(streams, list):
            data["streams"] = streams = [{**s, "uri": as_uri(s["uri"], base)} if isinstance(s, dict)
                                         and isinstance(s.get("uri"), str) else s for s in streams]
    if isinstance(streams, list) and isinstance(source, dict):
        defaults = {k: v for k, v in source.items() if k != "uri"}
        data["streams"] = streams = [{**defaults, **s} if isinstance(s, dict) else s for s in streams]
    if base is not None:
        if isinstance(source, dict):
            data["source"] = own_size(source, base)
        if isinstance(streams, list):
            data["streams"] = [own_size(s, base) if isinstance(s, dict) else s for s in streams]
    return data


def own_size(table: dict[str, Any], base: Path) -> dict[str, Any]:
    """A source table reading a video file, with no width and height of its own: the file's size."""
    uri = table.get("uri")
    if "width" in table or "height" in table or not isinstance(uri, str) or scheme_of(uri) != "file":
        return table
    from ..sources.probe import video_size

    path = resolved_path(uri, base)
    size = video_size(path) if path is not None else None
    return {**table, "width": size[0], "height": size[1]} if size else table


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def source_path(uri: str) -> Path | None:
    """The local path of a file:// or replay:// URI (None for other schemes); see ``core.uri``."""
    return local_path(uri)


def inert_keys(cfg: AppConfig, data: dict[str, Any]) -> list[str]:
    """Keys written in the file that would do nothing with the other values: said, never silently taken."""
    problems = []
    raw = data.get("labels")
    labels: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if cfg.labels.sample_every == 0:
        for key in ("inbox", "samples_dir", "max_samples_mb"):
            if key in labels and labels[key] not in ("", None):
                problems.append(f"labels.{key} = {labels[key]!r}: has no effect while labels.sample_every = 0 "
                                "(no frames are sampled); set sample_every > 0 or remove the key")
    return problems


def validate(cfg: AppConfig, data: dict[str, Any] | None = None) -> list[str]:
    """Checks that span keys or touch the file system; returns problems (key path first).
    ``data``: the file's own tables, to tell keys the user wrote from defaults."""
    problems: list[str] = inert_keys(cfg, data or {})
    data = data or {}
    if cfg.streams:
        analytics_data = data.get("analytics")
        written: dict[str, Any] = analytics_data if isinstance(analytics_data, dict) else {}
        for kind in ("lines", "zones"):
            if written.get(kind):
                problems.append(f"analytics.{kind}: with [[streams]] lines and zones belong to a stream: "
                                f"[[streams.analytics.{kind}]] under its [[streams]] table")
        if cfg.labels.labels_file:
            problems.append(f"labels.labels_file = {cfg.labels.labels_file!r}: with [[streams]] a labels file "
                            "belongs to a stream: streams[i].labels_file")
        streams_data = data.get("streams")
        raw: list[Any] = streams_data if isinstance(streams_data, list) else []
        seen: set[str] = set()
        for i, stream in enumerate(cfg.streams):
            given = raw[i] if i < len(raw) and isinstance(raw[i], dict) else {}
            problems += stream_problems(cfg, stream, f"streams[{i}]", given, seen)
            seen.add(stream.name)
    else:
        problems += _source_problems(cfg, cfg.source, "source")
        problems += analytics_problems(cfg, cfg.analytics, "analytics", cfg.source.width, cfg.source.height)
        if cfg.labels.labels_file and not cfg.resolve(cfg.labels.labels_file).exists():
            problems.append(f"labels.labels_file = {cfg.labels.labels_file!r}: "
                            f"{cfg.resolve(cfg.labels.labels_file)} does not exist")
    for name, model in cfg.models.items():
        problems.extend(_validate_model(cfg, name, model))
    http = cfg.output.http
    if http.enabled and not is_loopback(http.host) and not http.token:
        problems.append(f"output.http.host = {http.host!r}: binding beyond loopback requires "
                        "output.http.token to be set")
    rtsp = cfg.output.rtsp
    if rtsp.enabled and not is_loopback(rtsp.host) and not rtsp.allow_remote:
        problems.append(f"output.rtsp.host = {rtsp.host!r}: the RTSP output has no authentication; binding "
                        "beyond loopback requires output.rtsp.allow_remote = true (or use the HTTP view with a token)")
    if not cfg.output.rtsp.path.startswith("/"):
        problems.append(f"output.rtsp.path = {cfg.output.rtsp.path!r}: expected a path starting with '/'")
    if (cfg.output.http.enabled and cfg.output.rtsp.enabled and cfg.output.http.port
            and cfg.output.http.port == cfg.output.rtsp.port):
        problems.append(f"output.rtsp.port = {cfg.output.rtsp.port}: expected a port other than "
                        "output.http.port")
    problems.extend(_validate_events(cfg))
    r = cfg.rollout
    if r.fleet_public_key:
        import base64
        import binascii
        try:
            key = base64.b64decode(r.fleet_public_key, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            problems.append(f"rollout.fleet_public_key = {r.fleet_public_key[:20]!r}...: expected the base64 of an "
                            "Ed25519 public key (32 bytes; `edge-app fleet` logs it and serves /api/rollouts/key)")
    return problems


def stream_problems(cfg: AppConfig, stream: StreamConfig, key: str, given: dict[str, Any],
                    taken: set[str]) -> list[str]:
    """A [[streams]] table (or the JSON of POST /api/streams): name, URI, settings, lines/zones, files.
    ``given``: the keys as written (``uri`` must be); ``taken``: names already in use."""
    problems = []
    if not _MODEL_NAME.match(stream.name or ""):
        problems.append(f"{key}.name = {stream.name!r}: expected letters, digits, '_' or '-' starting with a letter "
                        "(at most 64; it is part of URLs)")
    elif stream.name in taken:
        problems.append(f"{key}.name = {stream.name!r}: another stream has this name")
    if "uri" not in given:
        problems.append(f"{key}.uri: missing (expected where frames come from, e.g. rtsp://camera/stream)")
    else:
        problems += _source_problems(cfg, stream, key)
    enabled = {n for n, m in cfg.models.items() if m.enabled}
    for i, model in enumerate(stream.models):
        if model not in enabled:
            problems.append(f"{key}.models[{i}] = {model!r}: expected an enabled model ({sorted(enabled) or 'none'})")
    runs = set(stream.models) or enabled
    problems += analytics_problems(cfg, stream.analytics, f"{key}.analytics", stream.width, stream.height, runs)
    if stream.labels_file and not cfg.resolve(stream.labels_file).exists():
        problems.append(f"{key}.labels_file = {stream.labels_file!r}: {cfg.resolve(stream.labels_file)} does not exist")
    return problems


def parse_stream(cfg: AppConfig, data: Any, taken: set[str]) -> StreamConfig:
    """One stream from JSON (the HTTP API): the same parsing and checks as a [[streams]] table;
    ConfigError naming each bad field."""
    if not isinstance(data, dict):
        raise ConfigError([f"expected a JSON object (a [[streams]] table), not {type(data).__name__}"], "stream")
    defaults = {f.name: getattr(cfg.source, f.name) for f in dataclasses.fields(SourceConfig) if f.name != "uri"}
    if isinstance(data.get("uri"), str):
        data = {**data, "uri": as_uri(data["uri"], cfg.base_dir)}
        if "width" not in data and "height" not in data:  # a file added over the API runs at its own size
            sized = own_size({"uri": data["uri"]}, cfg.base_dir)
            data = {**data, **{k: sized[k] for k in ("width", "height") if k in sized}}
    stream, problems = parse(StreamConfig, {**defaults, **data})
    if stream is None:
        raise ConfigError(problems or ["not a stream"], "stream")
    key = f"streams.{stream.name}" if _MODEL_NAME.match(stream.name or "") else "stream"
    problems = [f"{key}.{p}" for p in problems]  # parse names keys from the table's root ("fps = ...")
    problems += stream_problems(cfg, stream, key, data, taken)
    if problems:
        raise ConfigError(problems, "stream")
    return stream


def _source_problems(cfg: AppConfig, s: SourceConfig, key: str) -> list[str]:
    problems = []
    uri = s.uri
    scheme = scheme_of(uri)
    if "://" not in uri or scheme not in SOURCE_SCHEMES:
        problems.append(f"{key}.uri = {uri!r}: expected a URI with one of the schemes "
                        f"{', '.join(s + '://' for s in SOURCE_SCHEMES)}")
    else:
        resolved = resolved_path(uri, cfg.base_dir)
        if resolved is not None:
            if not resolved.exists():
                problems.append(f"{key}.uri = {uri!r}: {resolved} does not exist")
            elif scheme == "file" and not resolved.is_file():
                problems.append(f"{key}.uri = {uri!r}: {resolved} is not a file")
        if scheme == "synthetic":
            try:
                flag(uri, "labels", True)
            except ValueError as exc:
                problems.append(f"{key}.uri = {uri!r}: {str(exc).split(': ', 1)[1]}")
    if s.reconnect_initial_s > s.reconnect_max_s:
        problems.append(f"{key}.reconnect_initial_s = {s.reconnect_initial_s}: expected "
                        f"<= {key}.reconnect_max_s ({s.reconnect_max_s})")
    return problems


def _validate_events(cfg: AppConfig) -> list[str]:
    m = cfg.output.mqtt
    if not m.enabled:
        return []
    from ..core.uri import parse_url

    problems = []
    try:
        tls = parse_url(m.url)[0]
    except ValueError as exc:
        return [f"output.mqtt.url = {m.url!r}: {str(exc).split(': ', 1)[-1]}"]
    for key in ("ca_file", "cert_file", "key_file"):
        value = getattr(m, key)
        if value and not tls:
            problems.append(f"output.mqtt.{key} = {value!r}: only used with mqtts:// (the url is {m.url!r})")
        elif value and not cfg.resolve(value).is_file():
            problems.append(f"output.mqtt.{key} = {value!r}: {cfg.resolve(value)} does not exist")
    if m.key_file and not m.cert_file:
        problems.append(f"output.mqtt.key_file = {m.key_file!r}: expected output.mqtt.cert_file too")
    if m.device_id and not re.match(r"^[A-Za-z0-9_-]{1,64}$", m.device_id):
        problems.append(f"output.mqtt.device_id = {m.device_id!r}: expected letters, digits, '_' or '-' (it is a topic level)")
    if not re.match(r"^[A-Za-z0-9_/-]{1,128}$", m.topic_prefix) or "//" in m.topic_prefix or m.topic_prefix.endswith("/"):
        problems.append(f"output.mqtt.topic_prefix = {m.topic_prefix!r}: expected topic levels of letters, digits, "
                        "'_' or '-' separated by '/' (no '+', '#', empty levels)")
    return problems


def analytics_problems(cfg: AppConfig, a: AnalyticsConfig, key0: str, width: int, height: int,
                        runs: set[str] | None = None) -> list[str]:
    """Lines and zones: names unique and URL-safe, geometry sound inside the frame, models tracked."""
    from ..core.geometry import problems as geometry_problems

    problems: list[str] = []
    tracked = {n for n, m in cfg.models.items() if m.enabled and m.kind == "detector" and m.tracker.enabled
               and (runs is None or n in runs)}
    seen: set[str] = set()
    groups: tuple[tuple[str, tuple[LineConfig | ZoneConfig, ...]], ...] = (("lines", a.lines), ("zones", a.zones))
    for kind, items in groups:
        for i, item in enumerate(items):
            key = f"{key0}.{kind}[{i}]"
            if not _MODEL_NAME.match(item.name or ""):
                problems.append(f"{key}.name = {item.name!r}: expected letters, digits, '_' or '-' starting with a letter")
            elif item.name in seen:
                problems.append(f"{key}.name = {item.name!r}: another line or zone has this name")
            seen.add(item.name)
            problems += geometry_problems(key, item.points, item.units, width, height, polygon=kind == "zones")
            if item.model and item.model not in tracked:
                problems.append(f"{key}.model = {item.model!r}: expected a detector with [models.{item.model}.tracker] "
                                f"enabled = true (tracked: {sorted(tracked) or 'none'})")
    if (a.lines or a.zones) and not tracked:
        problems.append(f"{key0}: lines and zones count tracks: enable a detector's tracker "
                        "([models.NAME.tracker] enabled = true)")
    return problems


def _validate_model(cfg: AppConfig, name: str, model: ModelConfig) -> list[str]:
    key = f"models.{name}"
    problems: list[str] = []
    if not _MODEL_NAME.match(name):
        problems.append(f"{key}: expected a model name of letters, digits, '_' or '-' starting with a letter")
    if not model.enabled:
        return problems  # a disabled model is never loaded, so its files need not exist yet
    if model.kind in ("detector", "segmenter"):
        if not model.artifact:
            problems.append(f"{key}.artifact: missing (a {model.kind} needs an ONNX artifact)")
        else:
            path = cfg.resolve(model.artifact)
            if not path.is_file():
                problems.append(f"{key}.artifact = {model.artifact!r}: {path} does not exist")
    from ..backends import PRECISIONS as BACKEND_PRECISIONS
    if model.precision != "auto" and model.backend != "auto" and model.precision not in BACKEND_PRECISIONS[model.backend]:
        problems.append(f"{key}.precision = {model.precision!r}: backend {model.backend!r} runs "
                        f"{', '.join(BACKEND_PRECISIONS[model.backend])}")
    if model.thresholds_file and not cfg.resolve(model.thresholds_file).is_file():
        problems.append(f"{key}.thresholds_file = {model.thresholds_file!r}: "
                        f"{cfg.resolve(model.thresholds_file)} does not exist")
    cand = model.candidate
    if cand.artifact and model.kind == "classical":
        problems.append(f"{key}.candidate.artifact = {cand.artifact!r}: a classical model has no artifact to replace")
    elif cand.artifact and not cfg.resolve(cand.artifact).is_file():
        problems.append(f"{key}.candidate.artifact = {cand.artifact!r}: {cfg.resolve(cand.artifact)} does not exist")
    if cand.thresholds_file and not cfg.resolve(cand.thresholds_file).is_file():
        problems.append(f"{key}.candidate.thresholds_file = {cand.thresholds_file!r}: "
                        f"{cfg.resolve(cand.thresholds_file)} does not exist")
    if model.kind == "classical" and len(model.classes) < 2:
        problems.append(f"{key}.classes = {list(model.classes)!r}: expected at least two class names")
    if model.kind == "detector":
        problems += _detector_problems(cfg, name, model, key)
    return problems


def _frame_sizes(cfg: AppConfig, name: str) -> set[tuple[int, int]]:
    """The frame sizes (width, height) of the streams that run model ``name``."""
    return {(s.width, s.height) for s in cfg.stream_configs() if not s.models or name in s.models}


def _detector_problems(cfg: AppConfig, name: str, model: ModelConfig, key: str) -> list[str]:
    """Tiles, roi and class groups: against the frames of the streams that run it and the artifact's classes."""
    from ..frames.tiles import spec_problems

    problems: list[str] = []
    if len(model.tiles) != 2 or min(model.tiles) < 1:
        return [f"{key}.tiles = {list(model.tiles)}: expected [cols, rows], each at least 1"]
    sizes = _frame_sizes(cfg, name)
    if model.roi and model.roi_units == "pixels" and len(sizes) > 1:
        problems.append(f"{key}.roi: pixel points, but the streams running it have frames of sizes {sorted(sizes)}; "
                        "give roi_units = \"normalized\" (0..1)")
    for w, h in sorted(sizes):
        scale = (w, h) if model.roi_units == "normalized" else (1, 1)
        roi = [[[p[0] * scale[0], p[1] * scale[1]] if len(p) == 2 else list(p) for p in poly] for poly in model.roi]
        for p in spec_problems(key, model.tiles[0], model.tiles[1], model.overlap, roi, w, h):
            if p not in problems:
                problems.append(p)
    if model.class_groups and model.artifact and cfg.resolve(model.artifact).is_file():
        from ..core.artifact import ArtifactError, read_meta
        try:
            classes = read_meta(cfg.resolve(model.artifact), verify_checksum=False).classes
        except ArtifactError:
            return problems
        seen: dict[str, str] = {}
        for group, members in model.class_groups.items():
            unknown = [m for m in members if m not in classes]
            if unknown:
                problems.append(f"{key}.class_groups.{group} = {list(members)}: {unknown} are not classes of "
                                f"{model.artifact} (expected some of its {len(classes)}: {', '.join(classes[:10])}, ...)")
            for m in members:
                if m in seen and seen[m] != group:
                    problems.append(f"{key}.class_groups.{group}: {m!r} is already in group {seen[m]!r}")
                seen[m] = group
            if len(members) < 2:
                problems.append(f"{key}.class_groups.{group} = {list(members)}: expected at least two classes")
    if model.keep and model.artifact and cfg.resolve(model.artifact).is_file():
        from ..core.artifact import ArtifactError, read_meta
        try:
            classes = read_meta(cfg.resolve(model.artifact), verify_checksum=False).classes
        except ArtifactError:
            return problems
        unknown = [c for c in model.keep if c not in classes and c not in model.class_groups]
        if unknown:
            problems.append(f"{key}.keep = {list(model.keep)}: {unknown} are neither classes of {model.artifact} nor "
                            f"its class groups (expected some of: {', '.join(classes[:10])}, ...)")
    return problems


def model_tiles(cfg: AppConfig, name: str) -> Any:
    """A model's tiles as the runtime takes them: roi in normalised coordinates (pixel points of the config
    divided by the frame size of the streams that run it; config check makes sure there is one)."""
    from ..frames.tiles import TileSpec

    m = cfg.models[name]
    if len(m.tiles) != 2:
        return TileSpec()
    sizes = [(s.width, s.height) for s in cfg.stream_configs() if not s.models or name in s.models]
    w, h = sizes[0] if sizes and m.roi_units == "pixels" else (1, 1)
    roi = tuple(tuple((float(p[0]) / w, float(p[1]) / h) for p in poly) for poly in m.roi)
    return TileSpec(int(m.tiles[0]), int(m.tiles[1]), float(m.overlap), bool(m.full_frame), roi)
