"""Read the op contract (``plugins/ops/*.json``): one machine-readable spec per custom op.

Every side uses it: the exporter emits nodes and registers ONNX schemas from it, the C++ hosts are generated
from it at build time (``ops/gen_op_header.py``), and tests compare the PyTorch ops' argument names with it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

OPS_DIR = Path(__file__).resolve().parent / "ops"
PLUGIN_ATTRIBUTES = ("plugin_version", "plugin_namespace")


@dataclass(frozen=True)
class OpSpec:
    op_type: str
    domain: str
    since_version: int
    plugin_version: str
    plugin_namespace: str
    torch_op: str
    doc: str
    inputs: tuple[dict, ...]
    outputs: tuple[dict, ...]
    attributes: tuple[dict, ...]
    source: Path

    @property
    def input_names(self) -> list[str]:
        return [i["name"] for i in self.inputs]

    @property
    def op_attributes(self) -> list[dict]:
        """Attributes that configure the computation (not the TensorRT registry keys)."""
        return [a for a in self.attributes if a["name"] not in PLUGIN_ATTRIBUTES]

    def attribute(self, name: str) -> dict:
        for a in self.attributes:
            if a["name"] == name:
                return a
        raise KeyError(f"{self.op_type} ({self.source.name}) has no attribute {name!r}")

    def plugin_attributes(self) -> dict[str, str]:
        return {"plugin_version": self.plugin_version, "plugin_namespace": self.plugin_namespace}


def _load(path: Path) -> OpSpec:
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"cannot read op spec {path}: {e}") from None
    missing = [k for k in ("op_type", "domain", "since_version", "plugin_version", "plugin_namespace", "torch_op",
                           "inputs", "outputs", "attributes") if k not in d]
    if missing:
        raise ValueError(f"op spec {path} lacks {missing}")
    return OpSpec(d["op_type"], d["domain"], int(d["since_version"]), d["plugin_version"], d["plugin_namespace"],
                  d["torch_op"], d.get("doc", ""), tuple(d["inputs"]), tuple(d["outputs"]), tuple(d["attributes"]),
                  path)


@lru_cache(maxsize=None)
def load_specs() -> dict[str, OpSpec]:
    """All op specs keyed by op type."""
    specs = {}
    for path in sorted(OPS_DIR.glob("*.json")):
        spec = _load(path)
        specs[spec.op_type] = spec
    if not specs:
        raise FileNotFoundError(f"no op specs in {OPS_DIR}")
    return specs


def spec_for_torch_op(qualname: str) -> OpSpec:
    """The spec whose ``torch_op`` is ``qualname`` (e.g. "rrsr::modulated_deform_conv")."""
    for spec in load_specs().values():
        if spec.torch_op == qualname:
            return spec
    raise KeyError(f"no op spec declares torch_op {qualname!r}")
