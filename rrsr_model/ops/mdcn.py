"""Modulated deformable convolution (DCNv2) as one ``torch.library`` custom op.

Semantics are exactly those of ONNX ``DeformConv`` (opset 19) and of the DCNv2 CUDA kernel the authors used:

* ``offset`` has ``2 * offset_group * kh * kw`` channels laid out group-major, then tap ``k = i*kw + j``,
  then ``(dy, dx)``; ``mask`` has ``offset_group * kh * kw`` channels in the same group/tap order.
* Tap ``(i, j)`` of output pixel ``(ho, wo)`` samples the input at
  ``y = ho*stride_h - pad_top + i*dil_h + dy``, ``x = wo*stride_w - pad_left + j*dil_w + dx``
  with bilinear interpolation in which every corner outside the image reads 0 (a sample with
  ``y <= -1``, ``y >= H``, ``x <= -1`` or ``x >= W`` is 0 altogether), multiplied by the mask.
* Input channels are split into ``offset_group`` groups for the offsets and ``group`` groups for the weights.

The reference kernel below is plain PyTorch (gathers), processes one tap at a time so it never holds the
``C*kh*kw*Ho*Wo`` column buffer, and computes coordinates, bilinear weights and accumulation in FP32 whatever
the input dtype. A compiled kernel (``plugins/torch``) can replace it per device type through
:func:`use_kernel`; autograd always differentiates the reference, so training works with either.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

from .dispatch import KernelTable

__all__ = ["modulated_deform_conv", "mdcn_reference", "use_kernel", "registered_kernel", "using_kernel",
           "mdcn_output_size"]


def mdcn_output_size(h: int, w: int, kh: int, kw: int, strides, pads, dilations) -> tuple[int, int]:
    ho = (h + pads[0] + pads[2] - (dilations[0] * (kh - 1) + 1)) // strides[0] + 1
    wo = (w + pads[1] + pads[3] - (dilations[1] * (kw - 1) + 1)) // strides[1] + 1
    return ho, wo


def _check_args(x: Tensor, weight: Tensor, offset: Tensor, bias: Optional[Tensor], mask: Optional[Tensor],
                strides, pads, dilations, group: int, offset_group: int) -> tuple[int, int]:
    """Validate shapes and attributes; raise ValueError naming the argument. Returns (Ho, Wo)."""
    def fail(msg):
        raise ValueError(f"modulated_deform_conv: {msg}")

    if x.dim() != 4:
        fail(f"input must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    if weight.dim() != 4:
        fail(f"weight must be 4-D (C_out, C_in/group, kh, kw), got shape {tuple(weight.shape)}")
    if len(strides) != 2 or len(dilations) != 2 or len(pads) != 4:
        fail(f"strides and dilations need 2 values and pads 4, got {list(strides)}, {list(dilations)}, {list(pads)}")
    if min(strides) < 1 or min(dilations) < 1 or min(pads) < 0:
        fail(f"strides/dilations must be >= 1 and pads >= 0, got {list(strides)}, {list(dilations)}, {list(pads)}")
    n, c, h, w = x.shape
    cout, cin_g, kh, kw = weight.shape
    if group < 1 or c % group or cout % group:
        fail(f"group={group} must divide input channels {c} and output channels {cout}")
    if cin_g * group != c:
        fail(f"weight has {cin_g} input channels per group but input has {c} channels / group {group}")
    if offset_group < 1 or c % offset_group:
        fail(f"offset_group={offset_group} must divide input channels {c}")
    ho, wo = mdcn_output_size(h, w, kh, kw, strides, pads, dilations)
    if ho < 1 or wo < 1:
        fail(f"output would be empty for input {h}x{w}, kernel {kh}x{kw}, pads {list(pads)}")
    want = (n, 2 * offset_group * kh * kw, ho, wo)
    if tuple(offset.shape) != want:
        fail(f"offset must have shape {want}, got {tuple(offset.shape)}")
    if mask is not None and tuple(mask.shape) != (n, offset_group * kh * kw, ho, wo):
        fail(f"mask must have shape {(n, offset_group * kh * kw, ho, wo)}, got {tuple(mask.shape)}")
    if bias is not None and tuple(bias.shape) != (cout,):
        fail(f"bias must have shape ({cout},), got {tuple(bias.shape)}")
    return ho, wo


def mdcn_reference(x: Tensor, weight: Tensor, offset: Tensor, bias: Optional[Tensor] = None,
                   mask: Optional[Tensor] = None, strides: Sequence[int] = (1, 1),
                   pads: Sequence[int] = (0, 0, 0, 0), dilations: Sequence[int] = (1, 1),
                   group: int = 1, offset_group: int = 1) -> Tensor:
    """Pure-PyTorch DCNv2 forward; differentiable with respect to every tensor argument."""
    ho, wo = _check_args(x, weight, offset, bias, mask, strides, pads, dilations, group, offset_group)
    out_dtype = x.dtype
    n, c, h, w = x.shape
    cout, cin_g, kh, kw = weight.shape
    G, cg = offset_group, c // offset_group
    acc = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    xf = x.to(acc).reshape(n, G, cg, h * w)
    wf = weight.to(acc)
    off = offset.to(acc).reshape(n, G, kh * kw, 2, ho, wo)
    msk = mask.to(acc).reshape(n, G, kh * kw, ho, wo) if mask is not None else None

    dev = x.device
    base_y = (torch.arange(ho, device=dev, dtype=acc) * strides[0] - pads[0]).view(1, 1, ho, 1)
    base_x = (torch.arange(wo, device=dev, dtype=acc) * strides[1] - pads[1]).view(1, 1, 1, wo)
    out = x.new_zeros((n, cout, ho, wo), dtype=acc)
    for i in range(kh):
        for j in range(kw):
            k = i * kw + j
            py = base_y + i * dilations[0] + off[:, :, k, 0]          # (n, G, ho, wo)
            px = base_x + j * dilations[1] + off[:, :, k, 1]
            inside = (py > -1) & (py < h) & (px > -1) & (px < w)
            y0f, x0f = torch.floor(py), torch.floor(px)
            ly, lx = py - y0f, px - x0f
            y0, x0 = y0f.long(), x0f.long()
            sampled = 0
            for dy, dx, wgt in ((0, 0, (1 - ly) * (1 - lx)), (0, 1, (1 - ly) * lx),
                                (1, 0, ly * (1 - lx)), (1, 1, ly * lx)):
                yy, xx = y0 + dy, x0 + dx
                ok = inside & (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
                idx = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).reshape(n, G, 1, ho * wo)
                v = torch.gather(xf, 3, idx.expand(n, G, cg, ho * wo)).reshape(n, G, cg, ho, wo)
                sampled = sampled + v * (wgt * ok.to(acc)).unsqueeze(2)
            if msk is not None:
                sampled = sampled * msk[:, :, k].unsqueeze(2)
            col = sampled.reshape(n, group, cin_g, ho, wo)
            wk = wf[:, :, i, j].reshape(group, cout // group, cin_g)
            out = out + torch.einsum("ngchw,goc->ngohw", col, wk).reshape(n, cout, ho, wo)
    if bias is not None:
        out = out + bias.to(acc).view(1, cout, 1, 1)
    return out.to(out_dtype)


# ---------------------------------------------------------------------------------------------------------
# The custom op. Attributes travel as int lists; optional tensors as Optional[Tensor].

_KERNELS = KernelTable(mdcn_reference)


@torch.library.custom_op("rrsr::modulated_deform_conv", mutates_args=())
def _mdcn_op(x: Tensor, weight: Tensor, offset: Tensor, bias: Optional[Tensor], mask: Optional[Tensor],
             strides: list[int], pads: list[int], dilations: list[int], group: int, offset_group: int) -> Tensor:
    kernel = _KERNELS.kernel(x.device.type)
    # contiguous, as the fake kernel promises: a compiled graph (torch.compile) relies on the op's output strides
    return kernel(x, weight, offset, bias, mask, strides, pads, dilations, group, offset_group).contiguous()


@_mdcn_op.register_fake
def _(x, weight, offset, bias, mask, strides, pads, dilations, group, offset_group):
    kh, kw = weight.shape[2], weight.shape[3]
    ho = (x.shape[2] + pads[0] + pads[2] - (dilations[0] * (kh - 1) + 1)) // strides[0] + 1
    wo = (x.shape[3] + pads[1] + pads[3] - (dilations[1] * (kw - 1) + 1)) // strides[1] + 1
    return x.new_empty((x.shape[0], weight.shape[0], ho, wo))


def _setup_context(ctx, inputs, output):
    x, weight, offset, bias, mask, *attrs = inputs
    ctx.save_for_backward(x, weight, offset, bias, mask)
    ctx.attrs = attrs


def _backward(ctx, grad):
    # Differentiate the reference (recomputed): exact DCNv2 gradients, whichever kernel ran forward.
    saved = ctx.saved_tensors
    needs = ctx.needs_input_grad[:5]
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_(nd) if t is not None else None for t, nd in zip(saved, needs)]
        out = mdcn_reference(*leaves, *ctx.attrs)
        wrt = [t for t, nd in zip(leaves, needs) if t is not None and nd]
        grads = iter(torch.autograd.grad(out, wrt, grad, allow_unused=True)) if wrt else iter(())
    result = [next(grads) if (t is not None and nd) else None for t, nd in zip(leaves, needs)]
    return (*result, None, None, None, None, None)


_mdcn_op.register_autograd(_backward, setup_context=_setup_context)


def modulated_deform_conv(x: Tensor, weight: Tensor, offset: Tensor, bias: Optional[Tensor] = None,
                          mask: Optional[Tensor] = None, strides: Sequence[int] = (1, 1),
                          pads: Sequence[int] = (0, 0, 0, 0), dilations: Sequence[int] = (1, 1),
                          group: int = 1, offset_group: int = 1) -> Tensor:
    """DCNv2 / ONNX DeformConv. ``pads`` is ONNX's (top, left, bottom, right); see the module docstring."""
    if not torch.compiler.is_compiling():
        _check_args(x, weight, offset, bias, mask, strides, pads, dilations, group, offset_group)
    return _mdcn_op(x, weight, offset, bias, mask, list(strides), list(pads), list(dilations),
                    int(group), int(offset_group))


# Routing to compiled kernels (rrsr_model.ops.dispatch.KernelTable): use_kernel(device_type, fn or None),
# registered_kernel(device_type), using_kernel(device_type, fn) as a context that restores the previous routing.
use_kernel = _KERNELS.use
registered_kernel = _KERNELS.registered
using_kernel = _KERNELS.using
