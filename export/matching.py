"""Parity with a shared correspondence.

Top-1 patch matching is an argmax: where the best and second-best scores differ by less than float rounding
(~1e-6), any difference upstream (a convolution summed in another order) may pick the other patch, and one flipped
patch moves the SR by more than 1e-4 around it. So the FP32 parity of a graph whose matching is the
``RrsrPatchMatch`` op is measured in two parts: the SR against the PyTorch model fed *the graph's own
correspondence* (exposed as an extra output), and the correspondence against PyTorch's: how many patch indices
differ and by how much reference score (a near-tie is a gap below 1e-5, the op contract's tolerance).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Optional

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper

from plugins.opspec import spec_for_torch_op
from rrsr_model.ops import patch_match as pm_ops

NEAR_TIE = 1e-5


def index_output(proto: onnx.ModelProto) -> Optional[str]:
    """Name of the RrsrPatchMatch node's index output, or None when the graph matches otherwise."""
    spec = spec_for_torch_op("rrsr::patch_match")
    nodes = [n for n in proto.graph.node if (n.domain, n.op_type) == (spec.domain, spec.op_type)]
    return nodes[0].output[0] if len(nodes) == 1 else None


def with_index_output(proto: onnx.ModelProto) -> Optional[onnx.ModelProto]:
    """A copy of the graph that also outputs its correspondence (the RrsrPatchMatch index), or None."""
    name = index_output(proto)
    if name is None:
        return None
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    out.graph.output.append(helper.make_tensor_value_info(name, TensorProto.INT32, None))
    return out


def fixed_index_kernel(index: np.ndarray) -> Callable:
    """A patch-match kernel that returns the given correspondence (scores are not used downstream)."""
    idx = torch.from_numpy(np.ascontiguousarray(index, dtype=np.int32))

    def kernel(feat_in: torch.Tensor, feat_ref: torch.Tensor, patch_size: int):
        if tuple(idx.shape) != (feat_in.shape[0], feat_in.shape[2] - patch_size + 1, feat_in.shape[3] - patch_size + 1):
            raise ValueError(f"shared correspondence has shape {tuple(idx.shape)}, the model expects "
                             f"{(feat_in.shape[0], feat_in.shape[2] - patch_size + 1, feat_in.shape[3] - patch_size + 1)}")
        return idx.to(feat_in.device), torch.zeros(idx.shape, dtype=torch.float32, device=feat_in.device)

    return kernel


@contextlib.contextmanager
def matching_kernel(kernel: Optional[Callable], device_type: str = "cpu"):
    """Within the context, ``torch.ops.rrsr.patch_match`` on ``device_type`` runs ``kernel`` (None: unchanged)."""
    if kernel is None:
        yield
        return
    with pm_ops.using_kernel(device_type, kernel):
        yield


def compare_matching(model, lr_up: torch.Tensor, ref: torch.Tensor, index: np.ndarray) -> dict:
    """PyTorch's reference matching vs a backend's correspondence ``index`` on the model's CCN features: how many
    patch indices differ, and the largest gap between the reference scores of the two choices."""
    with torch.no_grad():
        dtype = model.net_extractor.feature_extraction_image1.mean.dtype
        f_in, f_ref = model.net_extractor(lr_up.to(dtype), ref.to(dtype))
        k = model.net_map.patch_size
        idx_ref, score_ref = pm_ops.patch_match_reference(f_in, f_ref, k)
        other = torch.from_numpy(np.asarray(index)).long().reshape(idx_ref.shape)
        differ = idx_ref.long() != other
        gap = 0.0
        if bool(differ.any()):
            # the reference score of the backend's choice, at the differing positions only
            p_in = F.unfold(F.normalize(f_in.float(), dim=1), k)                 # (N, C*k*k, Nq)
            p_ref = F.unfold(F.normalize(f_ref.float(), dim=1), k)
            p_ref = p_ref / (p_ref.norm(dim=1, keepdim=True) + pm_ops.PATCH_NORM_EPS)
            n, q = differ.flatten(1).nonzero(as_tuple=True)
            r = other.flatten(1)[n, q]
            theirs = (p_in[n, :, q] * p_ref[n, :, r]).sum(1)
            gap = float((score_ref.flatten(1)[n, q] - theirs).max())
    return {"patches": int(differ.numel()), "differ": int(differ.sum()), "max_gap": gap,
            "near_ties_only": gap < NEAR_TIE}


def format_matching(m: dict) -> str:
    if not m["differ"]:
        return f"correspondence identical to PyTorch's reference kernel ({m['patches']} patches)"
    kind = "all near-ties" if m["near_ties_only"] else "NOT all near-ties"
    return (f"correspondence: {m['differ']} of {m['patches']} patches differ from PyTorch's reference kernel "
            f"(max score gap {m['max_gap']:.1e}: {kind} < {NEAR_TIE:g})")
