"""An artifact's own description: what the runtime and calibration need to run it, nothing configured twice.

Stored twice on purpose: inside the ONNX (``metadata_props['edge_vision']``, travels with the file)
and as a JSON sidecar ``<model>.json`` beside it (readable without loading the model; for TensorRT
engines the only place). The sidecar also carries the ONNX's sha256, so a stale pair is detected.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

META_KEY = "edge_vision"
TASKS = ("detection", "segmentation")
# Every precision an artifact can be run at: the config's choices, build's variants, calibrate's
# recommendations and --apply all come from this one list. int8 = ONNX Runtime CPU style, int8-qdq =
# TensorRT style (explicit quantization); both become an INT8 TensorRT engine.
PRECISIONS = ("fp32", "fp16", "int8", "int8-qdq")
# Precisions a backend computes from another precision's file (no file of their own): bf16 is the FP32
# file computed in bfloat16 (OpenVINO on a CPU with AVX-512 BF16 or AMX).
COMPUTED_FROM = {"bf16": "fp32"}
# What a model can be run at (the config's choices, calibrate's rows and recommendations).
RUN_PRECISIONS = ("fp32", "bf16", "fp16", "int8", "int8-qdq")


class ArtifactError(Exception):
    """An artifact that is missing, corrupt or inconsistent with its metadata."""


@dataclass(frozen=True)
class ArtifactMeta:
    """Metadata of one model artifact.

    task: "detection" | "segmentation"; classes: detection = object classes (no background),
    segmentation = one name per output channel; input_size: (height, width) of the network input;
    color: channel order fed to the network; mean/std: per channel, applied to pixel/255;
    resize: "stretch" | "letterbox"; pad_value: the letterbox border's pixel value (0..255, before
    normalisation); score: "softmax" | "sigmoid" (detection scores / seg logits);
    background: detection score column 0 is background (SSD); outputs: role -> tensor name
    (detection: as its head says; ssd: boxes (1, A, 4) xyxy in input pixels, scores (1, A, C');
    segmentation: logits (1, C, H, W)); head: the detection output family, decoded by
    ``edge_app.decoders.heads`` ("ssd", "gfl", "yolo", "yolo-e2e", "detr"; "" on a detector = "ssd",
    artifacts older than the key); head_params: what that decoder needs (strides, bins, layout...);
    precision: one of PRECISIONS; onnx_sha256: of the ONNX file it describes.
    """

    task: str
    classes: tuple[str, ...]
    input_size: tuple[int, int]
    input_name: str = "images"
    layout: str = "NCHW"
    color: str = "RGB"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    resize: str = "stretch"
    pad_value: int = 114
    score: str = "softmax"
    background: bool = False
    outputs: dict[str, str] = field(default_factory=dict)
    precision: str = "fp32"
    model: str = ""
    ignore_index: int | None = None
    head: str = ""
    head_params: dict[str, Any] = field(default_factory=dict)
    onnx_sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # training data summary, metrics, precision table

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ArtifactError(f"metadata task {self.task!r}: expected one of {TASKS}")
        if not self.classes:
            raise ArtifactError("metadata classes: empty")
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            raise ArtifactError(f"metadata input_size {self.input_size!r}: expected (height, width)")
        for name in ("classes", "input_size", "mean", "std"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.task == "detection" and not self.head:
            object.__setattr__(self, "head", "ssd")  # every detector before the key was an SSD-style one

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> "ArtifactMeta":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ArtifactError(f"{where}: unknown metadata keys {unknown}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ArtifactError(f"{where}: {exc}") from None
        except ArtifactError as exc:
            raise ArtifactError(f"{where}: {exc}") from None

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sidecar_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".json")


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file so that readers see the old or the new content, never a half-written one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as open() would create it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_sidecar(model_path: Path, meta: ArtifactMeta) -> Path:
    path = sidecar_path(model_path)
    write_atomic(path, meta.to_json() + "\n")
    return path


def read_meta(model_path: Path, verify_checksum: bool = True) -> ArtifactMeta:
    """Metadata of an ONNX artifact: the sidecar when present (checksum verified), else the ONNX's own."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ArtifactError(f"{model_path}: model file not found")
    side = sidecar_path(model_path)
    if side.is_file():
        try:
            data = json.loads(side.read_text())
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{side}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        meta = ArtifactMeta.from_dict(data, str(side))
        if verify_checksum and meta.onnx_sha256 and model_path.suffix == ".onnx":
            actual = sha256_file(model_path)
            if actual != meta.onnx_sha256:
                raise ArtifactError(f"{model_path}: sha256 {actual[:12]}… does not match its metadata "
                                    f"{side} ({meta.onnx_sha256[:12]}…): the model was replaced or corrupted")
        return meta
    return read_embedded_meta(model_path)


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        b = data[i]
        value |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(data: bytes) -> Any:
    """(field number, wire type, value) of a protobuf message: int for varints, bytes for length-delimited."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            size, i = _varint(data, i)
            if i + size > len(data):
                raise ValueError("truncated field")
            value, i = data[i:i + size], i + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, i = data[i:i + size], i + size
        else:
            raise ValueError(f"wire type {wire}")
        yield number, wire, value


def onnx_metadata(model_path: Path) -> dict[str, str]:
    """``metadata_props`` of an ONNX file (ModelProto field 14: key 1, value 2), read from the protobuf
    itself: no onnx package, no runtime session (core stays numpy-only). ValueError on a broken file."""
    out: dict[str, str] = {}
    for number, wire, value in _fields(Path(model_path).read_bytes()):
        if number == 14 and wire == 2:
            entry = {n: v for n, w, v in _fields(value) if w == 2}
            out[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
    return out


def read_embedded_meta(model_path: Path) -> ArtifactMeta:
    """Metadata stored inside an ONNX file (its ``metadata_props``)."""
    try:
        props = onnx_metadata(model_path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{model_path}: not a loadable ONNX model ({exc})") from None
    raw = props.get(META_KEY)
    if raw is None:
        raise ArtifactError(f"{model_path}: no '{META_KEY}' metadata and no sidecar {sidecar_path(model_path)}")
    return ArtifactMeta.from_dict(json.loads(raw), f"{model_path} metadata")
