"""Reference-aware selection (RRSR's ``RefAwareBlock`` forward) as one ``torch.library`` custom op.

z = cat(x, ref); mu = spatial mean of z over the valid top-left region; routing r = sigmoid(Lin(mu)) over E
experts; per-sample kernel K_b = sum_e r_be W_e and bias; y = conv3x3(z, K_b) * sigmoid(SE(mu)).
No activation afterwards (the authors store ``act_layer`` but never apply it).

The reference below does the per-sample convolution as one grouped convolution over the batch, as the
authors do. ``valid_size`` (rows, cols) keeps zero padding out of the mean (the authors' ``original_size``);
it is a tensor so exported graphs can carry it as data.
"""
from __future__ import annotations

import contextlib
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .dispatch import KernelTable

__all__ = ["ref_aware_selection", "ras_reference", "ras_valid_mean", "use_kernel", "registered_kernel",
           "using_kernel"]


def ras_valid_mean(z: Tensor, valid_size: Optional[Tensor]) -> Tensor:
    """Mean over H, W of z (N, C, H, W), restricted to the top-left valid_size region when given."""
    if valid_size is None:
        return z.mean((2, 3))
    h, w = z.shape[-2:]
    vh = valid_size[0].clamp(1, h)
    vw = valid_size[1].clamp(1, w)
    # masks instead of slicing, so the region can be data (a graph input) rather than a traced constant
    rows = (torch.arange(h, device=z.device) < vh).to(z.dtype).view(h, 1)
    cols = (torch.arange(w, device=z.device) < vw).to(z.dtype).view(1, w)
    return (z * (rows * cols)).sum((2, 3)) / (vh * vw).to(z.dtype)


def ras_reference(x: Tensor, ref: Tensor, weight: Tensor, bias: Tensor, routing_weight: Tensor,
                  routing_bias: Tensor, se1_weight: Tensor, se1_bias: Tensor, se2_weight: Tensor,
                  se2_bias: Tensor, valid_size: Optional[Tensor] = None) -> Tensor:
    z = torch.cat([x, ref], dim=1)
    b, c, h, w = z.shape
    e, c_out, c_in, kh, kw = weight.shape
    if c_in != c:
        raise ValueError(f"ref_aware_selection: expert kernels expect {c_in} input channels, but x and ref "
                         f"concatenate to {c} ({x.shape[1]} + {ref.shape[1]})")
    # mean, routing, mixing and SE gate in FP32; the convolution in z's dtype (FP16 policy)
    f32 = torch.float32
    mu = ras_valid_mean(z.to(f32), valid_size)
    routing = torch.sigmoid(F.linear(mu, routing_weight.to(f32), routing_bias.to(f32)))        # (b, e)
    k = torch.mm(routing, weight.to(f32).reshape(e, -1)).reshape(b * c_out, c_in, kh, kw).to(z.dtype)
    beta = torch.mm(routing, bias.to(f32)).reshape(-1).to(z.dtype)
    y = F.conv2d(z.reshape(1, b * c, h, w), k, beta, padding=kh // 2, groups=b).reshape(b, c_out, h, w)
    g = torch.sigmoid(F.conv2d(F.relu(F.conv2d(mu[:, :, None, None], se1_weight.to(f32), se1_bias.to(f32))),
                               se2_weight.to(f32), se2_bias.to(f32)))
    return y * g.to(z.dtype)


_KERNELS = KernelTable(ras_reference)
_DECOMPOSE = [False]


@contextlib.contextmanager
def decomposed():
    """Within this context ``ref_aware_selection`` runs the reference as plain PyTorch ops instead of the
    custom op, so tracers (the standard ONNX export) see standard operators."""
    _DECOMPOSE.append(True)
    try:
        yield
    finally:
        _DECOMPOSE.pop()


@torch.library.custom_op("rrsr::ref_aware_selection", mutates_args=())
def _ras_op(x: Tensor, ref: Tensor, weight: Tensor, bias: Tensor, routing_weight: Tensor, routing_bias: Tensor,
            se1_weight: Tensor, se1_bias: Tensor, se2_weight: Tensor, se2_bias: Tensor,
            valid_size: Optional[Tensor]) -> Tensor:
    kernel = _KERNELS.kernel(x.device.type)
    # contiguous, as the fake kernel promises (channels-last inputs would make the reference's conv output
    # channels-last): a compiled graph (torch.compile) relies on the op's output strides
    return kernel(x, ref, weight, bias, routing_weight, routing_bias, se1_weight, se1_bias, se2_weight,
                  se2_bias, valid_size).contiguous()


@_ras_op.register_fake
def _(x, ref, weight, *rest):
    return x.new_empty((x.shape[0], weight.shape[1], x.shape[2], x.shape[3]))


def _setup_context(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _backward(ctx, grad):
    saved = ctx.saved_tensors
    needs = ctx.needs_input_grad
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_(nd) if (t is not None and t.is_floating_point()) else t
                  for t, nd in zip(saved, needs)]
        out = ras_reference(*leaves)
        wrt = [t for t, nd in zip(leaves, needs) if nd and t is not None]
        grads = iter(torch.autograd.grad(out, wrt, grad, allow_unused=True)) if wrt else iter(())
    return tuple(next(grads) if (nd and t is not None) else None for t, nd in zip(leaves, needs))


_ras_op.register_autograd(_backward, setup_context=_setup_context)


def ref_aware_selection(x: Tensor, ref: Tensor, weight: Tensor, bias: Tensor, routing_weight: Tensor,
                        routing_bias: Tensor, se1_weight: Tensor, se1_bias: Tensor, se2_weight: Tensor,
                        se2_bias: Tensor, valid_size: Optional[Tensor] = None) -> Tensor:
    if x.dim() != 4 or ref.dim() != 4 or x.shape[0] != ref.shape[0] or x.shape[2:] != ref.shape[2:]:
        raise ValueError(f"ref_aware_selection: x and ref must be (N, C, H, W) with equal N, H, W; "
                         f"got {tuple(x.shape)} and {tuple(ref.shape)}")
    op = ras_reference if _DECOMPOSE[-1] else _ras_op
    return op(x, ref, weight, bias, routing_weight, routing_bias, se1_weight, se1_bias, se2_weight, se2_bias,
              valid_size)


# Routing to compiled kernels (rrsr_model.ops.dispatch.KernelTable): use_kernel(device_type, fn or None),
# registered_kernel(device_type), using_kernel(device_type, fn) as a context that restores the previous routing.
use_kernel = _KERNELS.use
registered_kernel = _KERNELS.registered
using_kernel = _KERNELS.using
