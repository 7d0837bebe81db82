"""Runtime models: a network (artifact + backend + decoder) or a classical segmenter, behind ``predict``.

Built once at start from a ModelConfig; a missing or corrupt artifact, a stale engine or bad metadata is
a ModelError naming the file. Thresholds from calibration's file are loaded at start and on reload.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..backends import BackendError, create_backend, installed
from ..backends.cpu import cpu_info
from ..backends.tensorrt import device_info as tensorrt_device
from ..core.artifact import ArtifactError, ArtifactMeta, read_meta
from ..core.operating_point import DETECTOR
from ..frames.preprocess import Preprocessor
from ..core.types import Detections, SegMask
from ..decoders import DetectionDecoder, SegmentationDecoder
from . import artifacts, choice, classical, dispatch
from ..frames.tiles import TileSpec, prepare

log = logging.getLogger("edge_app.models")


class ModelError(Exception):
    pass


@dataclass
class ModelResult:
    """One model's output for one frame: detections or a mask, and per-stage seconds."""

    name: str
    task: str                               # detection | segmentation
    classes: tuple[str, ...]
    detections: Detections | None = None
    mask: SegMask | None = None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    """What the composition root hands a model: its own settings, paths resolved."""

    name: str
    kind: str
    artifact: Path | None
    precision: str = "auto"
    backend: str = "auto"
    score_threshold: float = DETECTOR.score_threshold
    nms_iou: float = DETECTOR.nms_iou
    top_k: int = DETECTOR.top_k
    max_detections: int = DETECTOR.max_detections
    thresholds_file: Path | None = None
    method: str = "kmeans"
    classes: tuple[str, ...] = ("background", "foreground")
    threads: int = 2
    requests: int = 1    # backend calls in flight at once (several streams: one per inference worker)
    engine_dir: Path = Path("var/engines")
    max_batch: int = 1   # a TensorRT engine built here: the profile's largest batch ...
    opt_batch: int = 1   # ... and the one it is tuned for (the number of streams)
    tiles: TileSpec = TileSpec()                      # a detector's tiled inference (cols x rows = 1: none)
    class_groups: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (group name, its classes): one object in NMS
    keep: tuple[str, ...] = ()                       # a detector's classes reported (empty: all)


class NetworkModel:
    """preprocess -> backend.infer -> decoder; the same three steps calibration runs offline."""

    def __init__(self, spec: ModelSpec, meta: ArtifactMeta, backend: Any, path: Path, precision: str) -> None:
        self.spec, self.meta, self.backend, self.path, self.precision = spec, meta, backend, path, precision
        self.name = spec.name
        self.task = meta.task
        self.classes = meta.classes
        self.pre = Preprocessor.from_meta(meta)
        if meta.task == "detection":
            try:
                self.decoder: Any = DetectionDecoder(meta, score_threshold=spec.score_threshold,
                                                     iou_threshold=spec.nms_iou, top_k=spec.top_k,
                                                     max_detections=spec.max_detections,
                                                     class_groups=dict(spec.class_groups), keep=spec.keep)
            except ValueError as exc:
                raise ModelError(f"model {spec.name}: {exc}") from None
        else:
            self.decoder = SegmentationDecoder(meta)
        self.thresholds_source = "config"
        self.mode = "batch"  # how several images reach the backend (dispatch.MODES); see measure_modes
        # the backend opened again with n calls in flight (measure_modes compares); None: not possible
        self.opener: Callable[[int], Any] | None = None
        self.why = ""        # why this backend x precision (choice.resolve)
        self.reload_thresholds()

    @property
    def batching(self) -> bool:
        """A batch of frames as one backend call (what the Batcher gathers frames for)."""
        return self.mode == "batch" and self.max_batch != 1

    @batching.setter
    def batching(self, on: bool) -> None:
        self.mode = "batch" if on else "frames"

    def reload_thresholds(self) -> None:
        """Per-class thresholds from calibration's file, if configured (SIGHUP calls this again)."""
        path = self.spec.thresholds_file
        if path is None or self.task != "detection":
            return
        try:
            data = json.loads(Path(path).read_text())
            per_class = data["score_thresholds"]
            chosen_for = data.get("onnx_sha256")
            if chosen_for and self.meta.onnx_sha256 and chosen_for != self.meta.onnx_sha256:
                log.warning("model %s: thresholds in %s were chosen for another version of the model "
                            "(re-run edge-app calibrate)", self.name, path)
            self.decoder.set_thresholds(per_class, data.get("nms_iou"))
            made = data.get("expected_with", {})
            setting = made.get("setting", artifacts.WHOLE_FRAME)
            if setting != self.spec.tiles.setting:  # a tile's scores are not a whole frame's
                log.warning("model %s: %s chose these thresholds on %s, this model runs %s (re-run edge-app "
                            "calibrate with its tiles)", self.name, path, setting, self.spec.tiles.setting)
            for key in ("top_k", "max_detections"):
                if key in made and made[key] != getattr(self.spec, key):
                    log.warning("model %s: %s chose these thresholds with %s = %s, this model runs %s: the live "
                                "numbers may differ from its expected ones", self.name, path, key, made[key],
                                getattr(self.spec, key))
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.error("model %s: thresholds file %s unusable (%s); keeping %s", self.name, path, exc,
                      self.thresholds_source)
            return
        self.thresholds_source = str(path)
        log.info("model %s: thresholds from %s: %s", self.name, path, per_class)

    @property
    def tiled(self) -> bool:
        return self.task == "detection" and self.spec.tiles.tiled

    def prepare(self, frame: np.ndarray) -> tuple[np.ndarray, Any]:
        """frame -> (network input, geometry): one image and its Letterbox, or a tiled frame's tiles (T, 3,
        h, w) and their Tiled geometry. Calibration, evaluation and the INT8 gate call this too."""
        return prepare(self.pre, frame, self.spec.tiles) if self.tiled else self.pre(frame)

    def infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The backend on (B, 3, h, w), as ``mode`` says: one call (in chunks the batch axis takes), one
        call per image, or calls in flight (``dispatch``)."""
        return dispatch.run(self.backend, self.meta.input_name, x, self.mode, self.max_batch)

    def predict(self, frame: np.ndarray) -> ModelResult:
        t0 = time.perf_counter()
        x, geo = self.prepare(frame)
        t1 = time.perf_counter()
        outputs = self.infer(x)
        t2 = time.perf_counter()
        decoded = self.decoder(outputs, geo)
        t3 = time.perf_counter()
        timings = {"preprocess": t1 - t0, "infer": t2 - t1, "postprocess": t3 - t2,
                   **getattr(self.decoder, "timings", {})}  # detection: "nms", part of postprocess
        if self.task == "detection":
            return ModelResult(self.name, "detection", self.classes, detections=decoded, timings=timings)
        return ModelResult(self.name, "segmentation", self.classes, mask=decoded, timings=timings)

    @property
    def max_batch(self) -> int | None:
        """Frames one backend call may take: None = any number (a dynamic batch axis), 1 = a fixed one."""
        return getattr(self.backend, "max_batch", 1)

    def measure_modes(self, n: int, rounds: int = 3) -> dict[str, Any]:
        """Milliseconds per image of each way of running ``n`` images (``dispatch.MODES``: one call, one
        call per image, calls in flight), on blank images of the model's input size (convolutions take as
        long on any pixels) or, tiled, on one frame's tiles; the fastest is kept (``dispatch.choose``), the
        backend reopened for it where it needs calls in flight. Returns {mode: ms per image, "mode": chosen}."""
        if self.tiled:
            frame = np.zeros((720, 1280, 3), np.uint8)
            x, _ = self.prepare(frame)
        else:
            h, w = self.meta.input_size
            x = np.concatenate([self.pre(np.zeros((h, w, 3), np.uint8))[0]] * n, axis=0)
        threads = max(self.spec.threads, 1)
        modes = dispatch.candidates(self.max_batch, threads)
        spread = None
        if "requests" in modes:
            in_flight = min(len(x), threads)
            if getattr(self.backend, "requests", 1) >= 2:
                spread = self.backend
            elif self.opener is not None and len(x) >= 2:
                spread = self.opener(in_flight)
            else:
                modes.remove("requests")
        name = self.meta.input_name
        def work(mode: str) -> Callable[[], Any]:
            backend = spread if mode == "requests" else self.backend
            return lambda: dispatch.run(backend, name, x, mode, self.max_batch)

        seconds = dispatch.measure({m: work(m) for m in modes}, rounds)
        chosen = dispatch.choose(seconds)
        if chosen == "requests" and spread is not self.backend:
            self.backend.close()
            self.backend = spread
        elif spread is not None and spread is not self.backend:
            spread.close()
        self.mode = chosen
        return {**{m: round(t / len(x) * 1e3, 2) for m, t in seconds.items()}, "images": len(x), "mode": chosen}

    def predict_batch(self, images: list[np.ndarray]) -> list[ModelResult]:
        """Results for each image (H, W, 3) BGR: the preprocessed tensors stacked into (N, 3, h, w) and run
        in one backend call (chunks of ``max_batch``); an artifact with a fixed batch of 1 runs frame by
        frame. Per-frame timings share the batch's preprocess and inference time equally."""
        if len(images) <= 1 or self.mode == "frames" or self.tiled:  # a tiled frame is a batch already
            return [self.predict(image) for image in images]
        return self._run_batch(images)

    def _run_batch(self, images: list[np.ndarray]) -> list[ModelResult]:
        n = len(images)
        t0 = time.perf_counter()
        prepared = [self.pre(image) for image in images]
        x = np.concatenate([p[0] for p in prepared], axis=0)
        t1 = time.perf_counter()
        outputs = self.infer(x)
        t2 = time.perf_counter()
        results = []
        for i, (_, geo) in enumerate(prepared):
            ts = time.perf_counter()
            decoded = self.decoder({k: v[i:i + 1] for k, v in outputs.items()}, geo)
            timings = {"preprocess": (t1 - t0) / n, "infer": (t2 - t1) / n,
                       "postprocess": time.perf_counter() - ts, **getattr(self.decoder, "timings", {})}
            if self.task == "detection":
                results.append(ModelResult(self.name, "detection", self.classes, detections=decoded, timings=timings))
            else:
                results.append(ModelResult(self.name, "segmentation", self.classes, mask=decoded, timings=timings))
        return results

    def _batch_word(self) -> str:
        limit = self.max_batch
        if limit == 1:
            return "1"
        return ("dynamic" if limit is None else f"1..{limit}") + ("" if self.batching else f" ({self.mode})")

    def describe(self) -> str:
        tiles = f", {self.spec.tiles.describe()}" if self.tiled else ""
        head = f" ({self.meta.head} head)" if self.task == "detection" else ""
        return (f"{self.name}: {self.meta.model or self.task}{head} {self.precision} on {self.backend.name} "
                f"({self.path}{'; ' + self.why if self.why else ''}), batch {self._batch_word()}{tiles}, thresholds "
                f"from {self.thresholds_source}")

    def close(self) -> None:
        self.backend.close()


class ClassicalModel:
    """OpenCV baseline segmenter as a model kind."""

    def __init__(self, spec: ModelSpec) -> None:
        if spec.method not in classical.METHODS:
            raise ModelError(f"model {spec.name}: unknown classical method {spec.method!r}")
        self.spec, self.name, self.task, self.classes = spec, spec.name, "segmentation", spec.classes

    def reload_thresholds(self) -> None:
        pass

    def predict(self, frame: np.ndarray) -> ModelResult:
        t0 = time.perf_counter()
        labels = classical.segment(self.spec.method, frame, len(self.classes))
        return ModelResult(self.name, "segmentation", self.classes, mask=SegMask(labels),
                           timings={"infer": time.perf_counter() - t0})

    def describe(self) -> str:
        return f"{self.name}: classical {self.spec.method} segmenter ({', '.join(self.classes)})"

    def close(self) -> None:
        pass


def _check_request(spec: ModelSpec) -> None:
    """Bad backend x precision asks, named by their config keys (what the config check cannot know:
    packages and CPU features of this machine)."""
    key = f"models.{spec.name}"
    if spec.backend == "openvino" and not installed("openvino"):
        raise ModelError(f'{key}.backend = "openvino": OpenVINO is not installed: pip install -e \'.[openvino]\' '
                         f'(or use backend = "onnxruntime")')
    if spec.precision == "bf16":
        if spec.backend in ("onnxruntime", "tensorrt"):
            raise ModelError(f'{key}.precision = "bf16": runs on backend "openvino" only, not {spec.backend}')
        cpu = cpu_info()
        if not cpu.has("BF16"):
            raise ModelError(f'{key}.precision = "bf16": this CPU ({cpu.model}) has no BF16 (AVX-512 BF16 or AMX: '
                             f'cpuinfo flag avx512_bf16 / amx_bf16); use fp32 or int8')


def _open_network(spec: ModelSpec, status: Callable[[str], None] | None = None) -> NetworkModel:
    fp32 = spec.artifact
    assert fp32 is not None
    fp32_meta = read_meta(fp32)
    _check_request(spec)
    precision = spec.precision
    setting = spec.tiles.setting if fp32_meta.task == "detection" else artifacts.WHOLE_FRAME
    if precision == "auto":
        precision = artifacts.recommended_precision(fp32, fp32_meta.onnx_sha256, setting) or "fp32"
    device = tensorrt_device() if spec.backend in ("auto", "tensorrt") else None
    if spec.backend in ("auto", "tensorrt"):
        engine, manifest = artifacts.engine_paths(spec.engine_dir, fp32, artifacts.engine_precision(precision))
        check = artifacts.check_engine(engine, manifest, fp32, device)
        if device is not None and not check.usable:
            # Missing or stale for this device: build it now, before the service reports ready.
            from .engines import build_engine
            say = status or log.info
            say(f"model {spec.name}: {check.reason}; building the TensorRT {precision} engine")
            build_engine(fp32, artifacts.engine_precision(precision), spec.engine_dir, log=say,
                         max_batch=spec.max_batch, opt_batch=spec.opt_batch)
            check = artifacts.check_engine(engine, manifest, fp32, device)
        if device is not None and check.usable:
            meta = fp32_meta
            return NetworkModel(spec, meta, create_backend("tensorrt", engine), engine,
                                artifacts.engine_precision(precision))
        if spec.backend == "tensorrt":
            why = "TensorRT/pycuda are not installed" if device is None else check.reason
            raise ModelError(f"model {spec.name}: backend tensorrt refused: {why}; build the engine with "
                             f"`edge-app build --tensorrt {fp32}` or use backend = \"onnxruntime\"")
    h, w = fp32_meta.input_size
    picked = choice.resolve(spec.backend, spec.precision, fp32, fp32_meta.onnx_sha256, threads=spec.threads,
                            input_shape=(1, 3, h, w), setting=setting)
    backend_name, precision = picked.backend, picked.precision
    variant = artifacts.variant_path(fp32, precision)
    if not variant.is_file():
        raise ModelError(f"model {spec.name}: {precision} artifact {variant} not found (make it with "
                         f"`edge-app build {fp32}`)")
    meta = read_meta(variant)
    if artifacts.stale_variant(meta, fp32_meta.onnx_sha256):
        if spec.precision != "auto":
            raise ModelError(f"model {spec.name}: {variant} was built from another version of {fp32}; "
                             f"rebuild it with `edge-app build {fp32}`")
        log.warning("model %s: %s was built from another version of %s; running FP32 (rebuild with "
                    "`edge-app build`)", spec.name, variant, fp32)
        variant, meta, precision = fp32, fp32_meta, "fp32"
    gated = artifacts.gate_setting(meta) if precision not in ("fp32", "bf16") else None
    if gated is not None and gated != setting:  # configured by hand: run it, but not silently
        log.warning("model %s: %s was calibrated and gated on %s, this model runs %s: its accuracy there is "
                    "unmeasured (edge-app build --tiles ... then calibrate, or precision = \"auto\")",
                    spec.name, variant.name, gated, setting)

    def opener(requests: int) -> Any:
        return create_backend(backend_name, variant, threads=spec.threads, precision=precision, requests=requests)

    model = NetworkModel(spec, meta, opener(spec.requests), variant, precision)
    model.opener, model.why = opener, picked.why
    return model


def _network(expected_task: str) -> Callable[..., NetworkModel]:
    def build(spec: ModelSpec, status: Callable[[str], None] | None = None) -> NetworkModel:
        model = _open_network(spec, status)
        if model.task != expected_task:
            raise ModelError(f"model {spec.name}: configured as a {spec.kind} but {model.path} is a "
                             f"{model.task} model")
        return model
    return build


MODEL_KINDS: dict[str, Callable[..., Any]] = {
    "detector": _network("detection"), "segmenter": _network("segmentation"),
    "classical": lambda spec, status=None: ClassicalModel(spec)}


def open_model(spec: ModelSpec, status: Callable[[str], None] | None = None) -> Any:
    """Build a runtime model; every failure is a ModelError naming the model and the file.

    status: where progress of long steps (a TensorRT engine build) is reported (systemd STATUS=).
    """
    try:
        return MODEL_KINDS[spec.kind](spec, status)
    except (ArtifactError, BackendError) as exc:
        raise ModelError(f"model {spec.name} (models.{spec.name}.backend = \"{spec.backend}\"): {exc}") from None


def open_artifact(path: Path, *, name: str | None = None, score_threshold: float = DETECTOR.score_threshold,
                  nms_iou: float = DETECTOR.nms_iou, top_k: int = DETECTOR.top_k,
                  max_detections: int = DETECTOR.max_detections, threads: int = 2,
                  spin: bool = False, tiles: TileSpec = TileSpec(),
                  class_groups: tuple[tuple[str, tuple[str, ...]], ...] = (), backend: str = "onnxruntime",
                  precision: str | None = None, requests: int = 1) -> NetworkModel:
    """One specific ONNX file on one backend (calibration compares backend x precision file by file);
    ``precision``: what the backend computes (default: the file's own; "bf16" on the FP32 file);
    ``spin``: let idle ONNX Runtime threads spin (the lowest latency of a model running alone)."""
    try:
        meta = read_meta(path)
        run_at = precision or meta.precision
        extra = {"spin": spin} if backend == "onnxruntime" else {}

        def opener(n: int) -> Any:
            return create_backend(backend, path, threads=threads, precision=run_at, requests=n, **extra)

        opened = opener(requests)
    except (ArtifactError, BackendError) as exc:
        raise ModelError(str(exc)) from None
    kind = "detector" if meta.task == "detection" else "segmenter"
    spec = ModelSpec(name or Path(path).stem, kind, Path(path), precision=run_at, backend=backend,
                     score_threshold=score_threshold, nms_iou=nms_iou, top_k=top_k, requests=requests,
                     max_detections=max_detections, threads=threads, tiles=tiles, class_groups=class_groups)
    model = NetworkModel(spec, meta, opened, Path(path), run_at)
    model.opener = opener
    return model
