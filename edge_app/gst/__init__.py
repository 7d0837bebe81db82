"""GStreamer: the only module that imports ``gi``: initialises GStreamer once and hands out its namespaces.

GStreamer's Python bindings come from the OS (python3-gi, python3-gst-1.0 and the gir1.2-* typelibs);
the venv must be created with --system-site-packages to see them (as on a Jetson).
"""
from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

_INSTALL = ("GStreamer's Python bindings are missing: apt-get install python3-gi python3-gst-1.0 "
            "gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-rtsp-server-1.0 "
            "gstreamer1.0-plugins-{base,good,bad,ugly} gstreamer1.0-libav, and create the venv with "
            "--system-site-packages (`make run` does both)")


class GstUnavailable(RuntimeError):
    pass


_init_lock = threading.Lock()
_ns: SimpleNamespace | None = None


def gst() -> SimpleNamespace:
    """Namespaces Gst, GstApp, GstVideo, GLib; GstRtspServer where its typelib is installed.

    Initialised once, under a lock: several cameras start their sources on their own threads at the same
    moment, and PyGObject's lazy loading of a namespace is not thread-safe (seen here: one of four
    sources started together failed with "'gi.repository.GLib' object has no attribute 'Idle'")."""
    global _ns
    if _ns is not None:
        return _ns
    with _init_lock:
        if _ns is None:
            _ns = _load()
        return _ns


def _unwinder_first() -> None:
    """libgcc_s's C++ unwinder, loaded globally before GStreamer: libgstreamer links libunwind.so.8, whose
    ``_Unwind_Resume`` would otherwise serve the C++ exceptions of libraries loaded later, and a C++
    exception thrown and caught inside OpenVINO then aborts the process (SIGABRT in __gxx_personality_v0
    via __libunwind_Unwind_Resume: OpenVINO 2026.4, any infer after Gst.init). Every C++ library loaded
    after GStreamer is safe with this."""
    import ctypes

    try:
        ctypes.CDLL("libgcc_s.so.1", mode=ctypes.RTLD_GLOBAL)
    except OSError:  # not glibc / gcc runtime (musl, macOS): their unwinding is their own
        pass


def _load() -> SimpleNamespace:
    _unwinder_first()
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstApp", "1.0")
        gi.require_version("GstVideo", "1.0")
        from gi.repository import GLib, Gst, GstApp, GstVideo
    except (ImportError, ValueError) as exc:
        raise GstUnavailable(f"{_INSTALL} ({exc})") from None
    Gst.init(None)
    ns = SimpleNamespace(Gst=Gst, GstApp=GstApp, GstVideo=GstVideo, GLib=GLib, GstRtspServer=None)
    try:
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GstRtspServer

        ns.GstRtspServer = GstRtspServer
    except (ImportError, ValueError):
        pass
    return ns


def has_element(factory: str) -> bool:
    """Whether a GStreamer element factory is installed (e.g. nvv4l2decoder on a Jetson)."""
    return gst().Gst.ElementFactory.find(factory) is not None


def make(factory: str, name: str | None = None, **props: Any) -> Any:
    """Create an element and set its properties from validated values (never a parse_launch string)."""
    Gst = gst().Gst
    el = Gst.ElementFactory.make(factory, name)
    if el is None:
        raise GstUnavailable(f"GStreamer element '{factory}' is not installed")
    for key, value in props.items():
        el.set_property(key.replace("_", "-"), value)
    return el


def caps(text: str) -> Any:
    """Caps from a string built by our code from validated integers, never from user input."""
    return gst().Gst.Caps.from_string(text)


_loop_lock = threading.Lock()
_loop: Any = None


def main_loop() -> Any:
    """A GLib main loop running in a daemon thread (RTSP server and bus watches need one)."""
    global _loop
    with _loop_lock:
        if _loop is None:
            GLib = gst().GLib
            _loop = GLib.MainLoop()
            threading.Thread(target=_loop.run, name="glib-main-loop", daemon=True).start()
        return _loop
