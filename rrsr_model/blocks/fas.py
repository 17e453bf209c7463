"""MDCN with a pre-computed offset (the authors' ``DynAgg``) and the FAS unit built around it.

``DynAgg`` keeps the official key layout: the deformable kernel's ``weight``/``bias`` sit on the module and
the offset/mask predictor is ``conv_offset_mask``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.mdcn import modulated_deform_conv


def pre_offset_yx(pre_offset: Tensor) -> Tensor:
    """(B, 9, H, W, 2) pre-offset with (x, y) last -> (B, 1, 2*9, H, W): channel 2k is y and 2k + 1 is x, the
    DCNv2 layout of one deformable group, to be broadcast over the groups. Built with stack/reshape (no slice
    assignment, which would export as ScatterND)."""
    b, k, h, w, _ = pre_offset.shape
    return torch.stack((pre_offset[..., 1], pre_offset[..., 0]), dim=2).reshape(b, 1, 2 * k, h, w)


class DynAgg(nn.Module):
    """Modulated deformable conv 3x3 whose offsets are (learned offset + pre-offset) and mask is sigmoid."""

    def __init__(self, in_channels: int, out_channels: int, deform_groups: int = 8, kernel_size: int = 3):
        super().__init__()
        self.deform_groups = deform_groups
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.conv_offset_mask = nn.Conv2d(in_channels, deform_groups * 3 * kernel_size * kernel_size,
                                          kernel_size, 1, kernel_size // 2)
        self.reset_parameters()

    def reset_parameters(self):
        # mmcv's ModulatedDeformConv2d init; the offset predictor starts at zero (samples = pre-offsets).
        stdv = 1.0 / math.sqrt(self.weight.shape[1] * self.kernel_size ** 2)
        nn.init.uniform_(self.weight, -stdv, stdv)
        nn.init.zeros_(self.bias)
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def offsets_and_mask(self, offset_feat: Tensor, pre_offset: Tensor) -> tuple[Tensor, Tensor]:
        # Offsets and mask in FP32 whatever the features' dtype (FP16 policy, rrsr_model.precision). Memory: at the
        # 4x stage of a 1080p output the FP32 offsets alone are 1.2 GB, so the pre-offset is broadcast over the
        # deformable groups (never tiled), the offset rows and the mask rows of conv_offset_mask ([o1, o2, mask])
        # run as two convolutions (one part's FP16 output is freed before the other is widened), and outside
        # autograd the sum and the sigmoid are in place. scripts/profile_memory.py counts the effect.
        conv = self.conv_offset_mask
        n_off = 2 * conv.out_channels // 3
        pad = conv.padding
        out = F.conv2d(offset_feat, conv.weight[:n_off], conv.bias[:n_off], padding=pad)
        b, _, h, w = out.shape
        widened = out.dtype != torch.float32
        offset = out.float().reshape(b, self.deform_groups, n_off // self.deform_groups, h, w)
        del out
        pre = pre_offset_yx(pre_offset.float())                  # (B, 1, 18, H, W)
        # in place only on the FP32 copy of FP16 features (FP32 ones: .float() is the conv output itself), outside
        # autograd and tracing (export sees the plain sum)
        in_place = widened and not torch.is_grad_enabled() and not torch.compiler.is_compiling()
        offset = offset.add_(pre) if in_place else offset + pre
        mask = F.conv2d(offset_feat, conv.weight[n_off:], conv.bias[n_off:], padding=pad).float()
        mask = mask.sigmoid_() if in_place else torch.sigmoid(mask)
        return offset.reshape(b, n_off, h, w), mask

    def forward(self, ref_feat: Tensor, offset_feat: Tensor, pre_offset: Tensor) -> Tensor:
        offset, mask = self.offsets_and_mask(offset_feat, pre_offset)
        p = self.kernel_size // 2
        return modulated_deform_conv(ref_feat, self.weight, offset, self.bias, mask, strides=(1, 1),
                                     pads=(p, p, p, p), dilations=(1, 1), group=1,
                                     offset_group=self.deform_groups)
