"""FP16 and calibrated INT8 variants of an FP32 ONNX, per target (measured here: one recipe does not fit all).

- ``fp16``: weights and compute in float16, float32 inputs/outputs (TensorRT builds FP16 engines from it;
  ONNX Runtime on CPU casts back to float32, so it is no faster there).
- ``int8``: ONNX Runtime CPU style: QDQ, uint8 asymmetric activations, int8 per-channel weights.
- ``int8-qdq``: TensorRT style: QDQ, int8 symmetric activations and per-channel symmetric weights
  (explicit quantization; on CPU it ran slower than FP32 for MobileNetV3 models).

Calibration images go through the runtime's Preprocessor; ranges are computed once per model, method and
set of calibration images and kept in a calibration cache (JSON) beside the artifact, as TensorRT keeps its
calibration cache. That cache is onnxruntime's own (``quantize_static(calibration_cache_path=)`` and
``save_tensors_data``), which appeared in onnxruntime 1.27.0 (absent from the 1.25 and 1.26 wheels, checked):
INT8 builds need 1.27 or newer and say so; the runtime itself runs the variants on older releases
(JetPack's), and FP16 builds need no particular release.
"""
from __future__ import annotations

import hashlib
import inspect
import tempfile
from dataclasses import replace
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from edge_app.core.artifact import META_KEY, ArtifactMeta, read_meta, sha256_file, write_sidecar
from edge_app.frames.preprocess import Preprocessor

from .extras import require

CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
# ORT's entropy calibrator with its default bins (128/128) has a single candidate and equals minmax;
# 2048 histogram bins folded to 128 make the KL search real.
_CALIB_OPTIONS: dict[str, dict[str, Any]] = {
    "minmax": {}, "percentile": {"percentile": 99.99, "num_bins": 2048},
    "entropy": {"num_bins": 2048, "num_quantized_bins": 128}}


def _ort_quant() -> Any:
    return require("onnxruntime.quantization")


INT8_MIN_ORT = "1.27"


def require_calibration_cache() -> None:
    """INT8 builds keep ranges in onnxruntime's calibration cache (1.27 and newer): a clear error otherwise,
    never a TypeError from deep inside quantize_static."""
    q = _ort_quant()
    from onnxruntime.quantization import calibrate

    if not ("calibration_cache_path" in inspect.signature(q.quantize_static).parameters
            and hasattr(calibrate, "save_tensors_data")):
        import onnxruntime

        raise RuntimeError(f"INT8 builds need onnxruntime >= {INT8_MIN_ORT} (its calibration cache API); this "
                           f"is {onnxruntime.__version__}: pip install 'onnxruntime>={INT8_MIN_ORT}' on the build machine")


class ImageReader:
    """ORT CalibrationDataReader over BGR images, preprocessed exactly as the runtime does."""

    def __init__(self, images: Iterable[np.ndarray], meta: ArtifactMeta) -> None:
        pre = Preprocessor.from_meta(meta)
        self._feeds = [{meta.input_name: pre(img)[0]} for img in images]
        self._i = 0

    def digest(self) -> str:
        """sha256 of the network inputs: which images, in which order, preprocessed how."""
        h = hashlib.sha256()
        for feed in self._feeds:
            for name in sorted(feed):
                h.update(name.encode())
                h.update(np.ascontiguousarray(feed[name]).tobytes())
        return h.hexdigest()

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._i >= len(self._feeds):
            return None
        self._i += 1
        return self._feeds[self._i - 1]

    def rewind(self) -> None:
        self._i = 0

    def __len__(self) -> int:
        return len(self._feeds)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._feeds = self._feeds[start_index:end_index]
        self._i = 0


def preprocess_for_quantization(fp32: Path, out: Path) -> Path:
    """ORT's recommended pre-processing (shape inference, graph optimisation) before quantizing."""
    shape_inference = require("onnxruntime.quantization.shape_inference")
    shape_inference.quant_pre_process(str(fp32), str(out), skip_symbolic_shape=True)
    return out


def calibration_cache(model: Path, reader: ImageReader, method: str, cache: Path) -> Path:
    """Activation ranges by ``method``, saved to ``cache`` (reused when it exists)."""
    q = _ort_quant()
    from onnxruntime.quantization.calibrate import create_calibrator

    require_calibration_cache()
    if cache.is_file():
        return cache
    methods = {"minmax": q.CalibrationMethod.MinMax, "percentile": q.CalibrationMethod.Percentile,
               "entropy": q.CalibrationMethod.Entropy}
    with tempfile.TemporaryDirectory(prefix="edge-calib-") as tmp:
        calibrator = create_calibrator(Path(model), None, augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                       calibrate_method=methods[method], extra_options=_CALIB_OPTIONS[method])
        reader.rewind()
        calibrator.collect_data(reader)
        ranges = calibrator.compute_data()
    from onnxruntime.quantization.calibrate import save_tensors_data  # type: ignore[attr-defined]

    cache.parent.mkdir(parents=True, exist_ok=True)
    save_tensors_data(ranges, cache)
    return cache


def _save_variant(src_model: Any, out: Path, meta: ArtifactMeta) -> ArtifactMeta:
    """Embed metadata into a variant's ONNX, write it, then the sidecar with its own checksum.
    ``meta`` still carries the FP32 model's checksum: recorded as the variant's source, so the runtime
    can tell a variant built from an older model."""
    onnx = require("onnx")
    meta = replace(meta, extra={**meta.extra, "source_onnx_sha256": meta.onnx_sha256})
    model = onnx.load(str(src_model)) if isinstance(src_model, (str, Path)) else src_model
    prune_opset_imports(model)
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = META_KEY, meta.to_json()
    tmp = out.with_name(f".{out.name}.tmp")
    onnx.save(model, str(tmp))
    tmp.replace(out)
    final = replace(meta, onnx_sha256=sha256_file(out))
    write_sidecar(out, final)
    return final


def prune_opset_imports(model: Any) -> None:
    """Keep only the opset imports of domains the graph uses. ORT's pre-processing stamps every domain it
    knows (ai.onnx.ml 5, com.microsoft, ...): ONNX Runtime 1.16 (JetPack's) then refuses the file
    ("Opset 5 is under development"), although no node needs them; TensorRT's parser needs none either."""
    used = {n.domain or "" for n in model.graph.node} | {""}
    keep = [o for o in model.opset_import if (o.domain or "") in used]
    del model.opset_import[:]
    model.opset_import.extend(keep)


def to_fp16(fp32: Path, out: Path) -> ArtifactMeta:
    onnx = require("onnx")
    float16 = require("onnxconverter_common.float16")
    meta = read_meta(fp32)
    model = float16.convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True)
    return _save_variant(model, out, replace(meta, precision="fp16"))


RECIPES = ("int8", "int8-qdq")


def to_int8(fp32: Path, out: Path, images: list[np.ndarray], *, recipe: str = "int8", method: str = "minmax",
            exclude: list[str] | None = None, work: Path | None = None) -> ArtifactMeta:
    """A calibrated INT8 variant; ``exclude`` names nodes kept in float (sensitive layers)."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown INT8 recipe {recipe!r}: expected one of {RECIPES}")
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"unknown calibration method {method!r}: expected one of {CALIBRATION_METHODS}")
    q = _ort_quant()
    require_calibration_cache()
    meta = read_meta(fp32)
    work = work or out.parent
    prep = preprocess_for_quantization(fp32, work / f".{fp32.stem}.prep.onnx")
    reader = ImageReader(images, meta)
    # The cache is keyed by the model's checksum and by the calibration inputs themselves: a retrained
    # model, other --data or another --count never reuse stale ranges.
    key = hashlib.sha256(f"{sha256_file(fp32)}:{method}:{_CALIB_OPTIONS[method]}:{reader.digest()}".encode())
    cache = calibration_cache(prep, reader, method, work / f"{fp32.stem}.calib-{method}.{key.hexdigest()[:16]}.json")
    trt_style = recipe == "int8-qdq"
    q.quantize_static(
        str(prep), str(out), reader, quant_format=q.QuantFormat.QDQ, per_channel=True,
        activation_type=q.QuantType.QInt8 if trt_style else q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
        nodes_to_exclude=list(exclude or []),
        calibrate_method={"minmax": q.CalibrationMethod.MinMax, "percentile": q.CalibrationMethod.Percentile,
                          "entropy": q.CalibrationMethod.Entropy}[method],
        extra_options={"ActivationSymmetric": trt_style, "WeightSymmetric": True},
        calibration_cache_path=str(cache))
    prep.unlink(missing_ok=True)
    extra = {**meta.extra, "quantization": {"recipe": recipe, "calibration": method, "images": len(images),
                                            "images_sha256": reader.digest(), "kept_in_float": list(exclude or []),
                                            "cache": cache.name}}
    return _save_variant(out, out, replace(meta, precision=recipe, extra=extra))


def sensitive_node_candidates(model_path: Path) -> list[list[str]]:
    """Node groups to keep in float, tried in order when INT8 loses too much: the output heads first
    (classification/regression/classifier convs), then also the stem (first convolutions)."""
    onnx = require("onnx")
    graph = onnx.load(str(model_path)).graph
    convs = [n.name for n in graph.node if n.op_type in ("Conv", "ConvTranspose", "MatMul", "Gemm")]
    heads = [n for n in convs if any(k in n.lower() for k in ("head", "classifier"))] or convs[-2:]
    stem = convs[:2]
    return [heads, heads + stem, heads + stem + convs[2:6]]
