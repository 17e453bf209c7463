"""The FP16 policy: which parts of RRSR run in half precision and which stay FP32, and why.

The table of which tensors are which type, and why, is in the README (section "FP16 policy").

``to_fp16(model)`` converts a model in place; the forward code casts at the boundaries of the table, so the
same code runs FP32 and FP16, and the ONNX export of an FP16 model carries exactly these types.
"""
from __future__ import annotations

import torch
from torch import nn

from .blocks.ras import RefAwareBlock


def fp32_submodules(model: nn.Module) -> list[nn.Module]:
    """Sub-modules kept in FP32 by the policy (RAS routing and SE gate)."""
    keep = []
    for m in model.modules():
        if isinstance(m, RefAwareBlock):
            keep += [m.routing_func, m.se]
    return keep


def to_fp16(model: nn.Module) -> nn.Module:
    """Apply the FP16 policy in place and return the model."""
    model.half()
    for m in fp32_submodules(model):
        m.float()
    return model


def param_dtype(module: nn.Module) -> torch.dtype:
    return next(module.parameters()).dtype
