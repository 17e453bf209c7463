"""PyTorch RRSR -> ONNX (torch.onnx dynamo exporter), in two flavours.

* ``plugin`` (default): MDCN and RAS become single nodes of domain ``rrsr`` (op types and attributes from the
  op spec, ``plugins/ops/*.json``), for the project's TensorRT plugins and ONNX Runtime library.
* ``standard``: MDCN becomes ONNX ``DeformConv`` (opset >= 19) and RAS standard operators: stock ONNX Runtime
  and TensorRT's builtin DeformConv can run it; the baseline the plugins must beat and a portable fallback.

The graph holds the whole network: correspondence network, matching, VGG19 reference features and trunk.
Inputs: ``lr`` (N,3,h,w), ``lr_up`` (N,3,4h,4w) = PIL bicubic x4 of the uint8 LR (kept outside the graph: PIL's
bicubic has no TensorRT equivalent), ``ref`` (N,3,4h,4w), ``valid_size`` int64 (2,) = unpadded SR (H, W)
(equal to the SR size unless the reference forced padding). Output ``sr`` (N,3,4h,4w), unclamped.
Matching: the plugin flavour emits one ``RrsrPatchMatch`` node (streaming, bounded memory); the standard flavour
one batched matrix product (memory grows as (h*w)^2; see README).
"""
from __future__ import annotations

import contextlib
import copy
import io
import warnings
from dataclasses import dataclass, field
from typing import Optional

import onnx
import torch
from torch import Tensor, nn

from plugins.opspec import spec_for_torch_op
from rrsr_model.network import RRSR
from rrsr_model.ops import ras as ras_ops
from rrsr_model.precision import to_fp16

from .metadata import write_metadata
from .opschema import register_schemas

FLAVOURS = ("plugin", "standard")
PRECISIONS = ("fp32", "fp16")
INPUT_NAMES = ("lr", "lr_up", "ref", "valid_size")
OUTPUT_NAMES = ("sr",)
MIN_OPSET, MAX_OPSET, DEFAULT_OPSET = 18, 22, 20
MIN_LR_SIDE, MAX_LR_SIDE = 4, 4096


class ExportError(RuntimeError):
    """Export failed; the message says at which step and why."""


class ExportGraph(nn.Module):
    """The traced function: RRSR.forward with graph-friendly matching."""

    def __init__(self, model: RRSR):
        super().__init__()
        self.model = model

    def forward(self, lr: Tensor, lr_up: Tensor, ref: Tensor, valid_size: Tensor) -> Tensor:
        return self.model(lr, lr_up, ref, valid_size)


# -- translations of the custom ops (called by the exporter with onnxscript values) -------------------------

def _rrsr_opset():
    import onnxscript
    spec = spec_for_torch_op("rrsr::modulated_deform_conv")
    return onnxscript.values.Opset(spec.domain, spec.since_version)


def _mdcn_plugin(x, weight, offset, bias, mask, strides, pads, dilations, group, offset_group):
    spec = spec_for_torch_op("rrsr::modulated_deform_conv")
    values = dict(strides=strides, pads=pads, dilations=dilations, group=group, offset_group=offset_group)
    attrs = {a["name"]: values[a["name"]] for a in spec.op_attributes}
    return getattr(_rrsr_opset(), spec.op_type)(x, weight, offset, bias, mask, **attrs, **spec.plugin_attributes())


def _ras_plugin(x, ref, weight, bias, routing_weight, routing_bias, se1_weight, se1_bias, se2_weight, se2_bias,
                valid_size):
    spec = spec_for_torch_op("rrsr::ref_aware_selection")
    return getattr(_rrsr_opset(), spec.op_type)(x, ref, weight, bias, routing_weight, routing_bias, se1_weight,
                                                 se1_bias, se2_weight, se2_bias, valid_size,
                                                 **spec.plugin_attributes())


def _patch_match_plugin(feat_in, feat_ref, patch_size):
    spec = spec_for_torch_op("rrsr::patch_match")
    attrs = {a["name"]: v for a, v in zip(spec.op_attributes, (patch_size,))}
    return getattr(_rrsr_opset(), spec.op_type)(feat_in, feat_ref, **attrs, **spec.plugin_attributes())


def _mdcn_standard(x, weight, offset, bias, mask, strides, pads, dilations, group, offset_group):
    from onnxscript import opset19 as op
    # DeformConv takes one type for all inputs: FP16 graphs feed it FP16 offsets/mask (TensorRT's builtin
    # then samples in half precision — the hazard the plugin flavour avoids)
    offset, mask = op.CastLike(offset, x), op.CastLike(mask, x)
    return op.DeformConv(x, weight, offset, bias, mask, strides=strides, pads=pads, dilations=dilations,
                         group=group, offset_group=offset_group, kernel_shape=[3, 3])


def translation_table(flavour: str) -> dict:
    if flavour == "plugin":
        return {torch.ops.rrsr.modulated_deform_conv.default: _mdcn_plugin,
                torch.ops.rrsr.ref_aware_selection.default: _ras_plugin,
                torch.ops.rrsr.patch_match.default: _patch_match_plugin}
    return {torch.ops.rrsr.modulated_deform_conv.default: _mdcn_standard}


# -- export ----------------------------------------------------------------------------------------------------

@dataclass
class ExportOptions:
    flavour: str = "plugin"
    precision: str = "fp32"
    opset: int = DEFAULT_OPSET
    batch: int = 1
    lr_size: tuple[int, int] = (40, 40)          # sample size traced with (and the fixed size if not dynamic)
    dynamic: bool = True
    min_lr: int = 8
    max_lr: int = 1024

    def validate(self) -> None:
        if self.flavour not in FLAVOURS:
            raise ValueError(f"unknown flavour {self.flavour!r}; choose one of {FLAVOURS}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose one of {PRECISIONS}")
        lo = 19 if self.flavour == "standard" else MIN_OPSET
        if not lo <= self.opset <= MAX_OPSET:
            why = " (DeformConv needs opset >= 19)" if self.flavour == "standard" and self.opset < 19 else ""
            raise ValueError(f"opset {self.opset} is not supported for the {self.flavour} flavour{why}; "
                             f"use {lo}..{MAX_OPSET}")
        if self.batch < 1:
            raise ValueError(f"batch must be >= 1, got {self.batch}")
        h, w = self.lr_size
        if not (MIN_LR_SIDE <= h <= MAX_LR_SIDE and MIN_LR_SIDE <= w <= MAX_LR_SIDE):
            raise ValueError(f"LR size {h}x{w} out of range [{MIN_LR_SIDE}, {MAX_LR_SIDE}]")
        if self.dynamic and not (MIN_LR_SIDE <= self.min_lr <= min(h, w) and max(h, w) <= self.max_lr):
            raise ValueError(f"dynamic LR range [{self.min_lr}, {self.max_lr}] must contain the sample size {h}x{w}")


def sample_inputs(batch: int, lr_size: tuple[int, int], seed: int = 0) -> tuple[Tensor, ...]:
    """Deterministic random inputs of the graph's signature (LR-up made as the runtime makes it)."""
    import numpy as np

    from rrsr_model.images import pil_bicubic, to_tensor
    rng = np.random.default_rng(seed)
    h, w = lr_size
    lrs, ups, refs = [], [], []
    for _ in range(batch):
        lr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        lrs.append(to_tensor(lr))
        ups.append(to_tensor(pil_bicubic(lr, (4 * h, 4 * w))))
        refs.append(to_tensor(rng.integers(0, 256, (4 * h, 4 * w, 3), dtype=np.uint8)))
    return torch.cat(lrs), torch.cat(ups), torch.cat(refs), torch.tensor([4 * h, 4 * w], dtype=torch.int64)


def _dynamic_shapes(opts: ExportOptions):
    if not opts.dynamic:
        return None
    h = torch.export.Dim("lr_h", min=opts.min_lr, max=opts.max_lr)
    w = torch.export.Dim("lr_w", min=opts.min_lr, max=opts.max_lr)
    return {"lr": {2: h, 3: w}, "lr_up": {2: 4 * h, 3: 4 * w}, "ref": {2: 4 * h, 3: 4 * w}, "valid_size": None}


@contextlib.contextmanager
def _export_mode(model: RRSR, flavour: str):
    """The standard flavour gets standard operators: dense matching and plain-op RAS; restores the model."""
    saved = model.net_map.matcher
    model.net_map.matcher = "op" if flavour == "plugin" else "dense"
    try:
        with (ras_ops.decomposed() if flavour == "standard" else contextlib.nullcontext()):
            yield
    finally:
        model.net_map.matcher = saved


def export_model(model: RRSR, opts: ExportOptions, verbose: bool = False) -> onnx.ModelProto:
    """Trace ``model`` on the CPU and return the ONNX model (not yet written). With ``precision="fp16"`` a copy
    of the model gets the FP16 policy (``rrsr_model.precision``) and the graph carries its explicit casts."""
    opts.validate()
    register_schemas()
    model = copy.deepcopy(model).float().cpu().eval()
    if opts.precision == "fp16":
        to_fp16(model)
    args = sample_inputs(opts.batch, opts.lr_size)
    graph = ExportGraph(model).eval()
    log = io.StringIO()
    try:
        quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(log)
        with _export_mode(model, opts.flavour), warnings.catch_warnings(), quiet:
            warnings.simplefilter("default" if verbose else "ignore")
            program = torch.onnx.export(graph, args, dynamo=True, opset_version=opts.opset,
                                        input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                                        dynamic_shapes=_dynamic_shapes(opts),
                                        custom_translation_table=translation_table(opts.flavour),
                                        optimize=True, verbose=verbose)
    except Exception as e:  # the exporter raises many types; keep the first line, the log has the rest
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"torch.onnx.export failed ({type(e).__name__}): {first}") from e
    proto = program.model_proto
    _name_dims(proto, opts)
    write_metadata(proto, {"variant": model.cfg.variant, "flavour": opts.flavour, "precision": opts.precision,
                           "opset": opts.opset, "batch": opts.batch, "dynamic": int(opts.dynamic),
                           "lr_size": "%dx%d" % opts.lr_size, "min_lr": opts.min_lr, "max_lr": opts.max_lr})
    return proto


def options_from_metadata(meta: dict, **overrides) -> ExportOptions:
    """The ExportOptions a graph was exported with (from its rrsr.* metadata), with ``overrides``."""
    h, w = (int(v) for v in meta.get("lr_size", "40x40").split("x"))
    opts = ExportOptions(flavour=meta.get("flavour", "plugin"), precision=meta.get("precision", "fp32"),
                         opset=int(meta.get("opset", DEFAULT_OPSET)), batch=int(meta.get("batch", 1)),
                         lr_size=(h, w), dynamic=bool(int(meta.get("dynamic", 1))),
                         min_lr=int(meta.get("min_lr", 8)), max_lr=int(meta.get("max_lr", 1024)))
    for k, v in overrides.items():
        setattr(opts, k, v)
    return opts


def _name_dims(proto: onnx.ModelProto, opts: ExportOptions) -> None:
    """Readable symbolic dims: LR h, w and the 4x ones."""
    names = {"lr_h": "h", "lr_w": "w", "4*lr_h": "H", "4*lr_w": "W"}
    for vi in list(proto.graph.input) + list(proto.graph.output):
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param") and d.dim_param in names:
                d.dim_param = names[d.dim_param]
    if opts.dynamic:
        out = proto.graph.output[0].type.tensor_type.shape.dim
        for d, name in zip(out[2:], ("H", "W")):
            d.ClearField("dim_value")
            d.dim_param = name
