"""The last step of every artifact this side writes (export, import): the metadata embedded in the ONNX,
its digest taken, the file renamed into place and the sidecar written, so a reader sees a whole artifact
or none."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from edge_app.core.artifact import META_KEY, ArtifactMeta, sha256_file, write_sidecar

from .extras import require


def seal(tmp: Path, final: Path, meta: ArtifactMeta) -> ArtifactMeta:
    """Embed ``meta`` into the ONNX at ``tmp`` (replacing any), rename it to ``final``, write its sidecar;
    returns the metadata with the file's sha256."""
    onnx = require("onnx")
    proto = onnx.load(str(tmp))
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, meta.to_json()
    onnx.save(proto, str(tmp))
    meta = replace(meta, onnx_sha256=sha256_file(Path(tmp)))
    os.replace(tmp, final)
    write_sidecar(Path(final), meta)
    return meta
