"""``edge-app doctor [--config FILE]``: what this machine can run, one row per check with a verdict.

Verdicts: ``ok``; ``missing`` (not here, and this config does not need it: TensorRT on a CPU box; each
says which package or extra installs it); ``fail`` (this config cannot run: an element its source or
outputs need, a model file, a config problem, a port taken). Exit 0 when no row fails, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..config import AppConfig, ConfigError, load_config, model_tiles
from ..core.uri import scheme_of

# GStreamer element -> the Debian/Ubuntu package that ships it (JetPack's for the NVIDIA ones).
ELEMENT_PACKAGES = {
    "appsink": "gstreamer1.0-plugins-base", "appsrc": "gstreamer1.0-plugins-base",
    "uridecodebin": "gstreamer1.0-plugins-base", "decodebin": "gstreamer1.0-plugins-base",
    "videoconvert": "gstreamer1.0-plugins-base", "videoscale": "gstreamer1.0-plugins-base",
    "videotestsrc": "gstreamer1.0-plugins-base",
    "v4l2src": "gstreamer1.0-plugins-good", "rtspsrc": "gstreamer1.0-plugins-good",
    "rtph264depay": "gstreamer1.0-plugins-good", "rtph264pay": "gstreamer1.0-plugins-good",
    "splitmuxsink": "gstreamer1.0-plugins-good", "mp4mux": "gstreamer1.0-plugins-good",
    "qtdemux": "gstreamer1.0-plugins-good", "jpegdec": "gstreamer1.0-plugins-good",
    "h264parse": "gstreamer1.0-plugins-bad", "x264enc": "gstreamer1.0-plugins-ugly",
    "avdec_h264": "gstreamer1.0-libav",
    "nvarguscamerasrc": "nvidia-l4t-gstreamer (JetPack)", "nvvidconv": "nvidia-l4t-gstreamer (JetPack)",
    "nvv4l2h264enc": "nvidia-l4t-gstreamer (JetPack)", "nvv4l2decoder": "nvidia-l4t-gstreamer (JetPack)",
}
SOURCE_ELEMENTS = {
    "file": ["uridecodebin", "qtdemux", "avdec_h264|nvv4l2decoder", "videoconvert", "videoscale", "appsink"],
    "rtsp": ["uridecodebin", "rtspsrc", "rtph264depay", "avdec_h264|nvv4l2decoder", "videoconvert", "appsink"],
    "rtsps": ["uridecodebin", "rtspsrc", "rtph264depay", "avdec_h264|nvv4l2decoder", "videoconvert", "appsink"],
    "v4l2": ["v4l2src", "decodebin", "jpegdec", "videoconvert", "videoscale", "appsink"],
    "csi": ["nvarguscamerasrc", "nvvidconv", "videoconvert", "appsink"],
    "test": ["videotestsrc", "videoconvert", "videoscale", "appsink"],
}
ENCODER = ["appsrc", "videoconvert", "x264enc|nvv4l2h264enc", "h264parse"]
OUTPUT_ELEMENTS = {"rtsp": ENCODER + ["rtph264pay"], "record": ENCODER + ["splitmuxsink", "mp4mux"]}


@dataclass(frozen=True)
class Row:
    check: str
    verdict: str   # ok | missing | fail
    detail: str


def _gst() -> Any:
    try:
        from ..gst import gst
        return gst()
    except Exception:  # GstUnavailable, or gi missing altogether
        return None


def gstreamer_rows(cfg: AppConfig | None) -> list[Row]:
    g = _gst()
    if g is None:
        return [Row("GStreamer", "fail", "Python bindings missing: apt install python3-gi python3-gst-1.0 "
                    "gir1.2-gstreamer-1.0 (and a venv with --system-site-packages)")]
    rows = [Row("GStreamer", "ok", f"{g.Gst.version_string()}")]
    needed: dict[str, str] = {}
    if cfg is not None:
        for stream in cfg.stream_configs():
            scheme = scheme_of(stream.uri)
            for el in SOURCE_ELEMENTS.get(scheme, []):
                needed.setdefault(el, f"source {scheme}://")
        for name in ("rtsp", "record"):
            if getattr(cfg.output, name).enabled:
                for el in OUTPUT_ELEMENTS[name]:
                    needed.setdefault(el, f"output {name}")
        if cfg.output.rtsp.enabled:
            ok = g.GstRtspServer is not None
            rows.append(Row("GstRtspServer typelib", "ok" if ok else "fail",
                            "installed (output rtsp)" if ok else "missing for output rtsp: apt install "
                            "gir1.2-gst-rtsp-server-1.0"))
    for alternatives, why in needed.items():
        options = alternatives.split("|")
        found = [el for el in options if g.Gst.ElementFactory.find(el) is not None]
        if found:
            rows.append(Row(f"element {alternatives}", "ok", f"{found[0]} ({why})"))
        else:
            pkgs = sorted({ELEMENT_PACKAGES.get(el, "?") for el in options})
            rows.append(Row(f"element {alternatives}", "fail", f"missing, needed by {why}: apt install {' or '.join(pkgs)}"))
    for el in ("nvvidconv", "nvv4l2h264enc"):  # Jetson hardware paths: used when present
        if el not in needed and g.Gst.ElementFactory.find(el) is None:
            rows.append(Row(f"element {el}", "missing", f"no Jetson {el}: CPU conversion/encoding is used "
                            f"({ELEMENT_PACKAGES[el]})"))
    return rows


def runtime_rows(cfg: AppConfig | None) -> list[Row]:
    rows = []
    try:
        import onnxruntime as ort
        rows.append(Row("ONNX Runtime", "ok", f"{ort.__version__}, providers {', '.join(ort.get_available_providers())}"))
    except ImportError:
        rows.append(Row("ONNX Runtime", "fail", "missing: pip install -e . (onnxruntime)"))
    wants_trt = cfg is not None and any(m.backend == "tensorrt" for m in cfg.models.values() if m.enabled)
    try:
        import tensorrt as trt
        have = hasattr(trt, "Builder")
    except ImportError:
        have = False
    rows.append(Row("TensorRT", "ok" if have else ("fail" if wants_trt else "missing"),
                    f"{trt.__version__}" if have else "missing: on a Jetson it comes with JetPack "
                    "(apt install python3-libnvinfer); models run on ONNX Runtime without it"))
    try:
        import pycuda  # noqa: F401
        rows.append(Row("pycuda", "ok", "installed"))
    except ImportError:
        rows.append(Row("pycuda", "fail" if wants_trt else "missing", "missing: pip install -e '.[jetson]' "
                        "(needed with TensorRT)"))
    rows += openvino_rows(cfg)
    from ..backends.tensorrt import device_info
    info = device_info()
    gpu = info["gpu"] if info else None
    if gpu is None and shutil.which("nvidia-smi"):
        gpu = "an NVIDIA GPU (nvidia-smi present; TensorRT/pycuda not usable)"
    rows.append(Row("GPU", "ok" if info else "missing", gpu or "none found: inference runs on the CPU"))
    return rows


# What each CPU feature means for our backends (present), and what its absence costs.
CPU_FEATURES = {
    "AVX2": ("the baseline of every x86 backend build", "x86 backends run their slowest generic code"),
    "AVX-512 VNNI": ("INT8 dot products in one instruction: INT8 models gain most",
                     "no 512-bit INT8 dot products: INT8 gains less"),
    "AVX-VNNI": ("INT8 dot products on 256-bit vectors", "no 256-bit VNNI (AVX-512 VNNI covers it where present)"),
    "AMX": ("Intel's matrix tiles for INT8 and BF16: OpenVINO's fastest path", "no AMX tiles (Intel Xeon 4th gen "
            "and later have them)"),
    "BF16": ("bfloat16 compute: precision bf16 on backend openvino", "precision bf16 is not available here"),
}


def cpu_rows(cfg: AppConfig | None) -> list[Row]:
    """The CPU and the features that decide which backend x precision is fastest on it."""
    from ..backends.cpu import cpu_info

    cpu = cpu_info()
    rows = [Row("CPU", "ok", cpu.describe())]
    wants_bf16 = [n for n, m in (cfg.models.items() if cfg is not None else []) if m.enabled and m.precision == "bf16"]
    x86 = bool(cpu.flags & {"sse2", "avx"})
    for feature, (have_it, lack_it) in CPU_FEATURES.items():
        if feature != "BF16" and not x86:
            continue  # an Arm CPU (a Jetson): the x86 rows say nothing
        have = cpu.has(feature)
        verdict = "ok" if have else ("fail" if feature == "BF16" and wants_bf16 else "missing")
        detail = have_it if have else lack_it + (f"; models {', '.join(wants_bf16)} ask precision bf16: use fp32 "
                                                 "or int8" if verdict == "fail" else "")
        rows.append(Row(f"CPU {feature}", verdict, detail))
    return rows


def openvino_rows(cfg: AppConfig | None) -> list[Row]:
    from ..backends import openvino as ovb

    wants = [n for n, m in (cfg.models.items() if cfg is not None else []) if m.enabled and m.backend == "openvino"]
    version = ovb.version()
    if version is None:
        need = f"; models {', '.join(wants)} ask backend openvino" if wants else ""
        return [Row("OpenVINO", "fail" if wants else "missing", f"missing: {ovb.EXTRA}{need} (models run on ONNX "
                    "Runtime without it)")]
    try:
        caps = ", ".join(ovb.core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception as exc:  # a broken install: say so, nothing else depends on this row
        return [Row("OpenVINO", "fail" if wants else "missing", f"{version} installed but not usable: {exc}")]
    return [Row("OpenVINO", "ok", f"{version}, CPU plugin: {caps}")]


def camera_rows() -> list[Row]:
    devices = sorted(Path("/dev").glob("video*"))
    if not devices:
        return [Row("cameras", "missing", "no /dev/video* (USB/V4L2 cameras appear there; CSI cameras use csi://)")]
    g = _gst()
    formats: dict[str, list[str]] = {}
    if g is not None:
        mon = g.Gst.DeviceMonitor.new()
        mon.add_filter("Video/Source", None)
        if mon.start():
            for dev in mon.get_devices():
                props = dev.get_properties()
                path = props.get_string("device.path") if props is not None else None
                caps = dev.get_caps()
                names = sorted({caps.get_structure(i).get_value("format") or caps.get_structure(i).get_name()
                                for i in range(caps.get_size())} - {None}) if caps else []
                if path:
                    formats[path] = [str(n) for n in names]
            mon.stop()
    return [Row(f"camera {d}", "ok", ", ".join(formats.get(str(d), [])) or "present (formats unknown)")
            for d in devices]


def model_rows(cfg: AppConfig) -> list[Row]:
    from ..core.artifact import ArtifactError, read_meta
    from ..inference import artifacts

    rows = []
    for name, m in cfg.models.items():
        if not m.enabled:
            rows.append(Row(f"model {name}", "ok", "disabled"))
            continue
        if m.kind == "classical":
            rows.append(Row(f"model {name}", "ok", f"classical {m.method}"))
            continue
        path = cfg.resolve(m.artifact)
        try:
            meta = read_meta(path)
        except ArtifactError as exc:
            rows.append(Row(f"model {name}", "fail", str(exc)))
            continue
        from ..inference.choice import resolve
        setting = model_tiles(cfg, name).setting if meta.task == "detection" else artifacts.WHOLE_FRAME
        try:
            picked = resolve(m.backend if m.backend != "tensorrt" else "auto", m.precision, path, meta.onnx_sha256,
                             timer=_untimed, setting=setting)
            backend, precision, why = picked.backend, picked.precision, picked.why
        except _Remeasure as later:
            backend, precision, why = "onnxruntime", "fp32", str(later)
        variant = artifacts.variant_path(path, precision)
        verdict = "ok" if variant.is_file() else "fail"
        rows.append(Row(f"model {name}", verdict, f"{meta.model or meta.task} {', '.join(meta.classes)}; runs "
                        f"{precision} on {backend} ({variant.name}{'' if variant.is_file() else ' MISSING: edge-app build ' + str(path)}; {why})"))
        engine, manifest = artifacts.engine_paths(cfg.state(cfg.runtime.engine_dir), path,
                                                  artifacts.engine_precision(precision))
        from ..backends.tensorrt import device_info
        check = artifacts.check_engine(engine, manifest, path, device_info())
        state = "fresh" if check.usable else ("missing" if not engine.is_file() else "stale")
        rows.append(Row(f"engine {name}", "ok" if check.usable else ("fail" if m.backend == "tensorrt" else "missing"),
                        f"{state}: {check.reason}" + ("" if check.usable else
                                                       " (edge-app build --tensorrt on the device; ONNX Runtime meanwhile)")))
    return rows


class _Remeasure(Exception):
    pass


def _untimed(fp32: Path, keys: Any, *_: Any) -> Any:
    """doctor does not time models: where the runtime would re-measure, it says so."""
    raise _Remeasure(f"recommendation made on another CPU: the runtime times {len(keys)} candidates at start "
                     "(fp32 on onnxruntime until then)")


def _port_free(host: str, port: int) -> bool:
    if port == 0:
        return True
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def system_rows(cfg: AppConfig) -> list[Row]:
    rows = []
    o = cfg.output
    for name, host, port in (("http", o.http.host, o.http.port), ("rtsp", o.rtsp.host, o.rtsp.port)):
        if getattr(o, name).enabled:
            free = _port_free(host, port)
            rows.append(Row(f"port {name} {host}:{port}", "ok" if free else "fail",
                            "free" if free else "in use (another edge-app? choose another port)"))
    for what, folder, need_mb in (("recordings", o.record.directory, 1024 if o.record.enabled else 0),
                                  ("samples", cfg.labels.samples_dir, cfg.labels.max_samples_mb if cfg.labels.sample_every else 0)):
        if not need_mb:
            continue
        path = cfg.state(folder)
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        free_mb = shutil.disk_usage(probe).free / 2**20
        rows.append(Row(f"disk {what}", "ok" if free_mb >= need_mb else "fail",
                        f"{free_mb:,.0f} MB free at {probe} (needs {need_mb} MB)"))
    return rows


def _lenient(path: Path) -> AppConfig | None:
    """The config as far as it parses (bad values at their defaults), or None when it is not TOML."""
    from ..config import with_source_defaults
    from ..config.loader import parse, read_toml
    try:
        cfg, _ = parse(AppConfig, with_source_defaults(read_toml(path), path.resolve().parent))
    except ConfigError:
        return None
    if cfg is not None:
        object.__setattr__(cfg, "base_dir", path.resolve().parent)
    return cfg


def diagnose(config: str | Path) -> list[Row]:
    rows: list[Row] = [Row("Python", "ok", sys.version.split()[0])]
    cfg: AppConfig | None = None
    try:
        cfg = load_config(config)
        streams = cfg.stream_configs()
        rows.append(Row("config", "ok", f"{config}: source {streams[0].uri}" if not cfg.streams else
                        f"{config}: {len(streams)} streams: " + ", ".join(f"{s.name} {s.uri}" for s in streams)))
    except ConfigError as exc:
        rows.append(Row("config", "fail", f"{exc.source}: " + "; ".join(exc.problems)))
        cfg = _lenient(Path(config))  # the rest is still checked: what else would be missing
    rows += gstreamer_rows(cfg) + runtime_rows(cfg) + cpu_rows(cfg) + camera_rows()
    if cfg is not None:
        rows += model_rows(cfg) + system_rows(cfg)
    return rows


def render(rows: list[Row]) -> str:
    width = max(len(r.check) for r in rows)
    mark = {"ok": "ok     ", "missing": "missing", "fail": "FAIL   "}
    return "\n".join(f"{r.check:<{width}}  {mark[r.verdict]}  {r.detail}" for r in rows)


def main(args: argparse.Namespace) -> int:
    rows = diagnose(args.config)
    failed = [r for r in rows if r.verdict == "fail"]
    if args.json:
        print(json.dumps({"rows": [asdict(r) for r in rows], "can_run": not failed}, indent=1))
    else:
        print(f"checking {args.config} (make run runs demo.toml: make doctor checks that one)\n"
              if Path(args.config).name == "config.toml" else f"checking {args.config}\n")
        print(render(rows))
        print(f"\n{args.config}: " + ("can run on this machine" if not failed else
                                      f"cannot run here: {len(failed)} failing check(s)"))
    return 1 if failed else 0
