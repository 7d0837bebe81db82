"""Source URIs with a local path (``file://``, ``replay://``), parsed in one place: the config check,
the sources and ``service install`` all read them through these functions.

``file:///abs/path`` has an empty host and an absolute path; ``file://relative/path`` (a common slip)
is taken as the relative path ``relative/path``, resolved against the config file's folder.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

LOCAL_SCHEMES = ("file", "replay")


def scheme_of(uri: str) -> str:
    return urlsplit(uri).scheme


def options(uri: str) -> dict[str, str]:
    """The query of a URI as a dict (``synthetic://?labels=off`` -> {"labels": "off"})."""
    return dict(parse_qsl(urlsplit(uri).query))


def yes_no(value: str) -> bool | None:
    """The one yes/no rule of URIs and command lines: 1/true/on/yes -> True, 0/false/off/no -> False (any
    case), anything else -> None."""
    low = value.lower()
    return True if low in ("1", "true", "on", "yes") else False if low in ("0", "false", "off", "no") else None


def flag(uri: str, key: str, default: bool) -> bool:
    """A yes/no option of a URI's query (``yes_no``); ValueError naming it otherwise."""
    value = options(uri).get(key)
    if value is None:
        return default
    out = yes_no(value)
    if out is None:
        raise ValueError(f"{uri}: {key}={value!r}, expected on or off")
    return out


def local_path(uri: str) -> Path | None:
    """The path of a file:// or replay:// URI as written (maybe relative); None for other schemes."""
    parts = urlsplit(uri)
    if parts.scheme not in LOCAL_SCHEMES:
        return None
    return Path(parts.netloc + parts.path) if parts.netloc else Path(parts.path)


def resolved_path(uri: str, base: Path) -> Path | None:
    """The absolute path of a file:// or replay:// URI, a relative one taken from ``base``."""
    p = local_path(uri)
    if p is None:
        return None
    p = p.expanduser()
    return p if p.is_absolute() else Path(base) / p


def absolute_uri(uri: str, base: Path) -> str:
    """``uri`` with a relative local path made absolute against ``base``; other URIs unchanged."""
    p = resolved_path(uri, base)
    return uri if p is None else f"{scheme_of(uri)}://{p}"


def as_uri(value: str, base: Path) -> str:
    """A source as a URI, whether written as one or as a path (the command line's INPUT, ``source.uri``):
    URIs as given (a relative file:// or replay:// path made absolute against ``base``); a bare path to a
    video file -> file://, to a folder -> replay://, /dev/videoN -> v4l2://; relative paths from ``base``
    (the current folder for the command line, the config's folder for the config)."""
    if "://" in value:
        return absolute_uri(value, base)
    if value.startswith("/dev/video"):
        return f"v4l2://{value}"
    path = (Path(base) / Path(value).expanduser()).resolve()
    return f"replay://{path}" if path.is_dir() else f"file://{path}"


def parse_url(url: str) -> tuple[bool, str, int, str, str]:
    """(tls, host, port, user, password) of an MQTT broker URL, mqtt://[user:pass@]host[:port] or
    mqtts://... (the device's output, the fleet, the command line: one parser)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"{url!r}: expected mqtt://host[:port] or mqtts://host[:port]")
    tls = parts.scheme == "mqtts"
    return (tls, parts.hostname, parts.port or (8883 if tls else 1883), unquote(parts.username or ""),
            unquote(parts.password or ""))
