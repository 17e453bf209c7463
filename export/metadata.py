"""Provenance written into every exported graph (ONNX ``metadata_props``, keys prefixed ``rrsr.``): how it was
exported and from which checkpoint, so later tools (rrsr-build-engine, the runtime) need not guess."""
from __future__ import annotations

import hashlib
from pathlib import Path

import onnx

PREFIX = "rrsr."


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def write_metadata(proto: onnx.ModelProto, values: dict) -> None:
    """Set (or replace) ``rrsr.<key>`` entries; values are stored as strings."""
    keep = [p for p in proto.metadata_props if p.key[len(PREFIX):] not in values or not p.key.startswith(PREFIX)]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for k, v in values.items():
        proto.metadata_props.add(key=PREFIX + k, value=str(v))


def read_metadata(model) -> dict[str, str]:
    """``rrsr.*`` entries of a ModelProto or an ONNX file (weights are not loaded)."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(Path(model)), load_external_data=False)
    return {p.key[len(PREFIX):]: p.value for p in model.metadata_props if p.key.startswith(PREFIX)}
