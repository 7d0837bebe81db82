"""``config.toml`` parsed once into frozen dataclasses (the composition root hands out the parts).

``load_config(path)`` raises ``ConfigError`` listing every problem, each naming its key path.
"""
from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

from ..core.uri import flag, local_path, resolved_path, scheme_of
from .loader import ConfigError, field_docs, parse, read_toml
from .schema import (SOURCE_SCHEMES, AppConfig, HttpConfig, LabelsConfig, LineConfig, LoggingConfig, ModelConfig,
                     OutputConfig, RecordConfig, RollingConfig, RtspConfig, RuntimeConfig, SourceConfig, ZoneConfig)

__all__ = ["AppConfig", "ConfigError", "HttpConfig", "LabelsConfig", "LoggingConfig", "ModelConfig",
           "OutputConfig", "RecordConfig", "RollingConfig", "RtspConfig", "RuntimeConfig", "SourceConfig",
           "field_docs", "is_loopback", "load_config", "source_path"]

_MODEL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def load_config(path: str | Path) -> AppConfig:
    """Read, parse and validate a config file. Relative paths inside are relative to its folder."""
    path = Path(path)
    data = read_toml(path)
    cfg, problems = parse(AppConfig, data)
    object.__setattr__(cfg, "base_dir", path.resolve().parent)
    problems += validate(cfg, data)
    if problems:
        raise ConfigError(problems, str(path))
    return cfg


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
    uri = cfg.source.uri
    scheme = scheme_of(uri)
    if "://" not in uri or scheme not in SOURCE_SCHEMES:
        problems.append(f"source.uri = {uri!r}: expected a URI with one of the schemes "
                        f"{', '.join(s + '://' for s in SOURCE_SCHEMES)}")
    else:
        resolved = resolved_path(uri, cfg.base_dir)
        if resolved is not None:
            if not resolved.exists():
                problems.append(f"source.uri = {uri!r}: {resolved} does not exist")
            elif scheme == "file" and not resolved.is_file():
                problems.append(f"source.uri = {uri!r}: {resolved} is not a file")
        if scheme == "synthetic":
            try:
                flag(uri, "labels", True)
            except ValueError as exc:
                problems.append(f"source.uri = {uri!r}: {str(exc).split(': ', 1)[1]}")
    if cfg.source.reconnect_initial_s > cfg.source.reconnect_max_s:
        problems.append(f"source.reconnect_initial_s = {cfg.source.reconnect_initial_s}: expected "
                        f"<= source.reconnect_max_s ({cfg.source.reconnect_max_s})")
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
    problems.extend(_validate_analytics(cfg))
    problems.extend(_validate_events(cfg))
    if cfg.labels.labels_file and not cfg.resolve(cfg.labels.labels_file).exists():
        problems.append(f"labels.labels_file = {cfg.labels.labels_file!r}: "
                        f"{cfg.resolve(cfg.labels.labels_file)} does not exist")
    return problems


def _validate_events(cfg: AppConfig) -> list[str]:
    m = cfg.output.mqtt
    if not m.enabled:
        return []
    from ..events.mqtt import parse_url

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


def _validate_analytics(cfg: AppConfig) -> list[str]:
    """Lines and zones: names unique and URL-safe, geometry sound inside the frame, models tracked."""
    from ..analytics.geometry import problems as geometry_problems

    problems: list[str] = []
    a = cfg.analytics
    tracked = {n for n, m in cfg.models.items() if m.enabled and m.kind == "detector" and m.tracker.enabled}
    seen: set[str] = set()
    groups: tuple[tuple[str, tuple[LineConfig | ZoneConfig, ...]], ...] = (("lines", a.lines), ("zones", a.zones))
    for kind, items in groups:
        for i, item in enumerate(items):
            key = f"analytics.{kind}[{i}]"
            if not _MODEL_NAME.match(item.name or ""):
                problems.append(f"{key}.name = {item.name!r}: expected letters, digits, '_' or '-' starting with a letter")
            elif item.name in seen:
                problems.append(f"{key}.name = {item.name!r}: another line or zone has this name")
            seen.add(item.name)
            problems += geometry_problems(key, item.points, item.units, cfg.source.width, cfg.source.height,
                                          polygon=kind == "zones")
            if item.model and item.model not in tracked:
                problems.append(f"{key}.model = {item.model!r}: expected a detector with [models.{item.model}.tracker] "
                                f"enabled = true (tracked: {sorted(tracked) or 'none'})")
    if (a.lines or a.zones) and not tracked:
        problems.append("analytics: lines and zones count tracks: enable a detector's tracker "
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
    if model.thresholds_file and not cfg.resolve(model.thresholds_file).is_file():
        problems.append(f"{key}.thresholds_file = {model.thresholds_file!r}: "
                        f"{cfg.resolve(model.thresholds_file)} does not exist")
    if model.kind == "classical" and len(model.classes) < 2:
        problems.append(f"{key}.classes = {list(model.classes)!r}: expected at least two class names")
    return problems
