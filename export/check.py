"""Checks of an exported graph: the ONNX checker, the operator census against TensorRT's parser, the
custom nodes against the op spec, and parity with the PyTorch FP32 model in ONNX Runtime."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import onnx
from onnx import helper

from plugins.opspec import load_specs

from . import tensorrt_ops
from .opschema import register_schemas

ModelLike = Union[onnx.ModelProto, str, Path]


def _proto(model: ModelLike) -> onnx.ModelProto:
    return model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))


def run_checker(model: ModelLike) -> None:
    """onnx.checker with full (strict shape-inference) checking; rrsr schemas registered first. For a model
    of 2 GB or more pass its path (the checker then reads external data itself)."""
    register_schemas()
    onnx.checker.check_model(model if isinstance(model, onnx.ModelProto) else str(model), full_check=True)


def op_census(model: ModelLike) -> Counter:
    """Node count per "domain::op_type" ("" for the default domain)."""
    return Counter(f"{n.domain or ''}::{n.op_type}" for n in _proto(model).graph.node)


def format_census(census: Counter) -> str:
    rows = sorted(census.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{k.lstrip(':')} {v}" for k, v in rows)


def tensorrt_problems(model: ModelLike) -> list[str]:
    """Nodes TensorRT's ONNX parser would reject or that this project keeps out of its graphs. Custom rrsr
    nodes are fine when they carry the plugin registry attributes."""
    proto = _proto(model)
    specs = {(s.domain, s.op_type): s for s in load_specs().values()}
    problems = []
    for n in proto.graph.node:
        where = f"node {n.name!r} ({n.domain + '::' if n.domain else ''}{n.op_type})"
        if (n.domain, n.op_type) in specs:
            attrs = {a.name for a in n.attribute}
            for key in ("plugin_version", "plugin_namespace"):
                if key not in attrs:
                    problems.append(f"{where}: custom node lacks the {key} attribute TensorRT's registry needs")
            continue
        if n.domain not in ("", "ai.onnx"):
            problems.append(f"{where}: unknown custom domain {n.domain!r}")
        elif n.op_type not in tensorrt_ops.SUPPORTED:
            problems.append(f"{where}: not supported by TensorRT's ONNX parser")
        elif n.op_type in tensorrt_ops.DISCOURAGED:
            problems.append(f"{where}: {tensorrt_ops.DISCOURAGED[n.op_type]}")
        elif n.op_type == "Resize":
            a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
            mode = a.get("mode", b"nearest").decode()
            ctm = a.get("coordinate_transformation_mode", b"half_pixel").decode()
            if mode not in tensorrt_ops.RESIZE_MODES or ctm not in tensorrt_ops.RESIZE_COORDINATE_MODES:
                problems.append(f"{where}: Resize mode {mode!r} / {ctm!r} is not supported by TensorRT")
    return problems


def custom_node_problems(model: ModelLike) -> list[str]:
    """rrsr nodes whose attributes differ from the op spec (unknown names, wrong types or lengths)."""
    proto = _proto(model)
    problems = []
    for spec in load_specs().values():
        declared = {a["name"]: a for a in spec.attributes}
        for n in proto.graph.node:
            if (n.domain, n.op_type) != (spec.domain, spec.op_type):
                continue
            for a in n.attribute:
                d = declared.get(a.name)
                if d is None:
                    problems.append(f"node {n.name!r}: attribute {a.name!r} is not in the {spec.op_type} spec")
                    continue
                v = helper.get_attribute_value(a)
                if d["type"] == "ints" and (not isinstance(v, list) or ("length" in d and len(v) != d["length"])):
                    problems.append(f"node {n.name!r}: {a.name} must be {d.get('length', 'a list of')} ints, got {v}")
                if d["type"] == "string" and v.decode() != getattr(spec, a.name, v.decode()):
                    problems.append(f"node {n.name!r}: {a.name} {v.decode()!r} differs from the spec's "
                                    f"{getattr(spec, a.name)!r}")
            if len(n.input) > len(spec.inputs):
                problems.append(f"node {n.name!r}: {len(n.input)} inputs, the spec declares {len(spec.inputs)}")
    return problems


# -- ONNX Runtime parity ------------------------------------------------------------------------------------

def uses_custom_ops(model: ModelLike) -> bool:
    domains = {s.domain for s in load_specs().values()}
    return any(n.domain in domains for n in _proto(model).graph.node)


def ort_session(model: ModelLike, providers: Optional[list[str]] = None, library: Optional[str] = None,
                threads: Optional[int] = None):
    """An onnxruntime InferenceSession; graphs with rrsr nodes get the project's custom-op library
    (``library`` or the built one). Raises FileNotFoundError naming the build command when it is missing.
    ``threads``: intra-op threads (ORT's default: one per core), which the custom ops' CPU kernels also use."""
    import onnxruntime as ort

    from plugins.ort_library import require_library
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = int(threads)
    if uses_custom_ops(model):
        so.register_custom_ops_library(library or require_library())
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(data, so, providers=providers or ["CPUExecutionProvider"])


@dataclass
class Parity:
    max_abs: float
    mean_abs: float
    psnr: float          # dB, SR of the backend vs PyTorch's, peak 1.0

    def __str__(self) -> str:
        return f"max abs {self.max_abs:.3e}, mean abs {self.mean_abs:.3e}, PSNR {self.psnr:.2f} dB"


def compare(out: np.ndarray, ref: np.ndarray) -> Parity:
    if out.shape != ref.shape:
        raise ValueError(f"output shape {out.shape} differs from the reference's {ref.shape}")
    d = out.astype(np.float64) - ref.astype(np.float64)
    mse = float(np.mean(d * d))
    return Parity(float(np.abs(d).max()), float(np.abs(d).mean()),
                  math.inf if mse == 0 else 10 * math.log10(1.0 / mse))


def _reference_ops():
    """onnx.reference implementations of the rrsr ops, backed by the PyTorch reference kernels."""
    import torch
    from onnx.reference.op_run import OpRun

    from rrsr_model.ops.mdcn import mdcn_reference
    from rrsr_model.ops.patch_match import patch_match_reference
    from rrsr_model.ops.ras import ras_reference

    def t(x):
        return None if x is None else torch.from_numpy(np.array(x))

    class RrsrModulatedDeformConv(OpRun):
        op_domain = "rrsr"

        def _run(self, X, W, offset, B=None, mask=None, strides=None, pads=None, dilations=None, group=None,
                 offset_group=None, plugin_version=None, plugin_namespace=None):
            y = mdcn_reference(t(X), t(W), t(offset), t(B), t(mask), strides or (1, 1), pads or (0, 0, 0, 0),
                               dilations or (1, 1), group or 1, offset_group or 1)
            return (y.numpy(),)

    class RrsrRefAwareSelection(OpRun):
        op_domain = "rrsr"

        def _run(self, *inputs, plugin_version=None, plugin_namespace=None):
            args = [t(x) for x in inputs] + [None] * (11 - len(inputs))
            return (ras_reference(*args).numpy(),)

    class RrsrPatchMatch(OpRun):
        op_domain = "rrsr"

        def _run(self, F_in, F_ref, patch_size=None, plugin_version=None, plugin_namespace=None):
            idx, score = patch_match_reference(t(F_in), t(F_ref), patch_size or 3)
            return idx.numpy(), score.numpy()

    return [RrsrModulatedDeformConv, RrsrRefAwareSelection, RrsrPatchMatch]


class ReferenceRunner:
    """Slow pure-Python fallback (onnx.reference + the PyTorch reference kernels for rrsr nodes), for when the
    custom-op library is not built. Same ``run(None, feeds)`` call as an InferenceSession."""

    def __init__(self, model: ModelLike):
        from onnx.reference import ReferenceEvaluator
        register_schemas()
        self._ev = ReferenceEvaluator(_proto(model), new_ops=_reference_ops())

    def run(self, outputs, feeds):
        return self._ev.run(outputs, feeds)


# -- FP16 policy (rrsr_model.precision) ------------------------------------------------------------------------

def tensor_types(model: ModelLike) -> dict[str, int]:
    """Element type (onnx.TensorProto enum) of every named tensor the graph declares."""
    g = _proto(model).graph
    types = {vi.name: vi.type.tensor_type.elem_type for vi in (*g.value_info, *g.input, *g.output)}
    types.update({i.name: i.data_type for i in g.initializer})
    return types


def fp16_policy_problems(model: ModelLike) -> list[str]:
    """Tensors whose type differs from the FP16 policy's table: I/O FP32; MDCN features/kernel FP16 with FP32
    offsets and mask; RAS features/experts FP16 with FP32 routing and SE; matching (ArgMax) on FP32; the bulk of
    the convolutions FP16."""
    from onnx import TensorProto as T
    proto = _proto(model)
    types = tensor_types(proto)
    name = {T.FLOAT: "float32", T.FLOAT16: "float16"}
    problems = []

    def want(tensor, dtype, what):
        got = types.get(tensor)
        if tensor and got != dtype:
            problems.append(f"{what} ({tensor!r}) is {name.get(got, got)}, the FP16 policy says {name[dtype]}")

    for vi in (*proto.graph.input[:3], *proto.graph.output):
        want(vi.name, T.FLOAT, f"graph I/O {vi.name}")
    n_conv16 = n_conv = 0
    for n in proto.graph.node:
        if n.op_type == "RrsrModulatedDeformConv":
            for i, t in enumerate(n.input):
                want(t, T.FLOAT if i in (2, 4) else T.FLOAT16, f"{n.name} input {i}")
        elif n.op_type == "RrsrRefAwareSelection":
            for i, t in enumerate(n.input[:10]):
                want(t, T.FLOAT16 if i < 4 else T.FLOAT, f"{n.name} input {i}")
        elif n.op_type == "ArgMax":
            want(n.input[0], T.FLOAT, f"{n.name} (matching scores)")
        elif n.op_type == "Conv":
            n_conv += 1
            n_conv16 += types.get(n.input[0]) == T.FLOAT16
    if n_conv and n_conv16 < 0.9 * n_conv:
        problems.append(f"only {n_conv16} of {n_conv} Conv nodes run in FP16")
    return problems
