"""MDCN with a pre-computed offset (the authors' ``DynAgg``) and the FAS unit built around it.

``DynAgg`` keeps the official key layout: the deformable kernel's ``weight``/``bias`` sit on the module and
the offset/mask predictor is ``conv_offset_mask``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..ops.mdcn import modulated_deform_conv


def reorder_pre_offset(pre_offset: Tensor, groups: int) -> Tensor:
    """(B, 9, H, W, 2) pre-offset with (x, y) last -> (B, 2*9*groups, H, W) in the DCNv2 layout: channel
    2(g*9 + k) is y and 2(g*9 + k) + 1 is x (tiled over the deformable groups). Built with stack/reshape
    (no slice assignment, which would export as ScatterND)."""
    b, k, h, w, _ = pre_offset.shape
    yx = torch.stack((pre_offset[..., 1], pre_offset[..., 0]), dim=2)          # (B, 9, 2, H, W)
    return yx.repeat(1, groups, 1, 1, 1).reshape(b, 2 * k * groups, h, w)


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
        # offsets and mask in FP32 whatever the features' dtype (FP16 policy, rrsr_model.precision)
        o1, o2, mask = torch.chunk(self.conv_offset_mask(offset_feat).float(), 3, dim=1)
        offset = torch.cat((o1, o2), dim=1) + reorder_pre_offset(pre_offset.float(), self.deform_groups)
        return offset, torch.sigmoid(mask)

    def forward(self, ref_feat: Tensor, offset_feat: Tensor, pre_offset: Tensor) -> Tensor:
        offset, mask = self.offsets_and_mask(offset_feat, pre_offset)
        p = self.kernel_size // 2
        return modulated_deform_conv(ref_feat, self.weight, offset, self.bias, mask, strides=(1, 1),
                                     pads=(p, p, p, p), dilations=(1, 1), group=1,
                                     offset_group=self.deform_groups)
