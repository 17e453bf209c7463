"""The restoration trunk (the authors' ``RestorationNet``): content extractor, FAS stages at 1x / 2x / 4x with
pixel-shuffle tails, and the bilinear x4 skip. Attribute names reproduce the official checkpoint keys."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import RRSRConfig
from .common import lrelu, make_body
from .content import ContentExtractor
from .fas import DynAgg
from .ras import RefAwareBlock

ORDINALS = ("first", "second", "third", "fourth", "fifth")
# scale name, reference channels, VGG layer, divisor of the output size
SCALES = (("small", 256, "relu3_1", 4), ("medium", 128, "relu2_1", 2), ("large", 64, "relu1_1", 1))


def _fas_names(cfg: RRSRConfig, scale: str) -> list[str]:
    """Key suffixes of the FAS units of one scale: '' when the scale has a single unit."""
    n = 1 if scale == "small" else cfg.fas_per_scale
    return [""] if n == 1 else ["_" + ORDINALS[i] for i in range(n)]


class DynamicAggregationRestoration(nn.Module):
    def __init__(self, cfg: RRSRConfig):
        super().__init__()
        self.cfg = cfg
        nf = cfg.ngf
        for scale, c_ref, _, _ in SCALES:
            n_body = cfg.n_blocks if scale == "small" else cfg.n_blocks_fas
            for sfx in _fas_names(cfg, scale):
                setattr(self, f"{scale}_offset_conv1{sfx}", nn.Conv2d(nf + c_ref, c_ref, 3, 1, 1))
                setattr(self, f"{scale}_offset_conv2{sfx}", nn.Conv2d(c_ref, c_ref, 3, 1, 1))
                setattr(self, f"{scale}_dyn_agg{sfx}", DynAgg(c_ref, c_ref, cfg.groups))
                if cfg.use_ras:
                    head = RefAwareBlock(nf, nf, c_ref, cfg.num_experts)
                else:
                    head = nn.Sequential(nn.Conv2d(nf + c_ref, nf, 3, 1, 1), lrelu())
                setattr(self, f"head_{scale}{sfx}", head)
                setattr(self, f"body_{scale}{sfx}", make_body(n_body, nf))
            if scale == "large":
                self.tail_large = nn.Sequential(nn.Conv2d(nf, nf // 2, 3, 1, 1), lrelu(),
                                                nn.Conv2d(nf // 2, 3, 3, 1, 1))
            else:
                setattr(self, f"tail_{scale}", nn.Sequential(nn.Conv2d(nf, nf * 4, 3, 1, 1), nn.PixelShuffle(2),
                                                             lrelu()))
        self.lrelu = lrelu()

    def forward(self, x: Tensor, pre_offset: dict, ref_feats: dict, valid_size: Optional[Tensor] = None) -> Tensor:
        for scale, _, layer, div in SCALES:
            ref = ref_feats[layer]
            pre = pre_offset[layer]
            valid = None if valid_size is None else torch.div(valid_size, div, rounding_mode="floor")
            for sfx in _fas_names(self.cfg, scale):
                o = self.lrelu(getattr(self, f"{scale}_offset_conv1{sfx}")(torch.cat([x, ref], 1)))
                o = self.lrelu(getattr(self, f"{scale}_offset_conv2{sfx}")(o))
                aligned = self.lrelu(getattr(self, f"{scale}_dyn_agg{sfx}")(ref, o, pre))
                del o  # full-resolution maps at the 4x stage: drop each as soon as it is consumed (peak memory)
                head = getattr(self, f"head_{scale}{sfx}")
                h = head(x, aligned, valid) if self.cfg.use_ras else head(torch.cat([x, aligned], 1))
                del aligned
                x = getattr(self, f"body_{scale}{sfx}")(h) + x
                del h
            del ref, pre
            x = getattr(self, f"tail_{scale}")(x)
        return x


def srntt_init_(net: nn.Module, gain: float = 0.02) -> None:
    """The authors' init: every Conv*/Linear module gets N(0, gain) weights and zero bias. DCN main kernels
    and RAS experts are not Conv/Linear modules and keep their own init; offset predictors are re-zeroed."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in net.modules():
        if isinstance(m, DynAgg):
            nn.init.zeros_(m.conv_offset_mask.weight)
            nn.init.zeros_(m.conv_offset_mask.bias)


class RestorationNet(nn.Module):
    """net_g. Inputs: LR (B, 3, h, w) in [0, 1], pre-offsets and VGG19 reference features; output the SR
    (B, 3, 4h, 4w), unclamped. ``valid_size`` (2,) int64 = unpadded (H, W) of the output, for padded inputs."""

    def __init__(self, cfg: RRSRConfig):
        super().__init__()
        self.content_extractor = ContentExtractor(cfg.ngf, cfg.n_blocks)
        self.dyn_agg_restore = DynamicAggregationRestoration(cfg)
        srntt_init_(self)

    def forward(self, lr: Tensor, pre_offset: dict, ref_feats: dict, valid_size: Optional[Tensor] = None) -> Tensor:
        base = F.interpolate(lr.float(), scale_factor=4, mode="bilinear", align_corners=False)
        x = self.content_extractor(lr.to(self.content_extractor.conv_first.weight.dtype))
        # FP16 policy (rrsr_model.precision): the residual is added to the FP32 skip in FP32
        return self.dyn_agg_restore(x, pre_offset, ref_feats, valid_size).float() + base
