"""The whole RRSR pipeline: CCN -> correspondence (+ VGG19 reference features) -> restoration trunk."""
from __future__ import annotations

from typing import Callable, Mapping, Optional

import torch
from torch import Tensor, nn

from .blocks.ccn import ContrasExtractorSep
from .blocks.correspondence import CorrespondenceGeneration
from .blocks.trunk import RestorationNet
from .config import RRSRConfig


class RRSR(nn.Module):
    """Sub-modules carry the authors' roles and names:

    * ``net_extractor``: the contrastive correspondence network (keys of ``feature_extraction.pth``), frozen
      during restoration training;
    * ``net_map``: matching and the frozen VGG19 (``net_map.vgg.features.*``, torchvision layout);
    * ``net_g``: the generator (keys of ``network_mse.pth`` / ``network_gan.pth``).
    """

    def __init__(self, cfg: RRSRConfig):
        super().__init__()
        self.cfg = cfg
        self.net_extractor = ContrasExtractorSep()
        self.net_map = CorrespondenceGeneration(cfg.patch_size, cfg.match_stride)
        self.net_g = RestorationNet(cfg)
        for p in self.net_extractor.parameters():
            p.requires_grad_(False)

    STAGES = ("ccn", "matching", "vgg19", "trunk")

    def stage_modules(self) -> dict[str, Callable]:
        """The four stages of ``forward``, by name: the CCN, the matching (index -> pre-offsets), the frozen VGG19
        on the reference, the restoration trunk. ``run_stages`` chains them; a caller may wrap each one (time it,
        torch.compile it) and pass the wrapped ones back."""
        return {"ccn": self.net_extractor, "matching": self.net_map.match, "vgg19": self.net_map.vgg,
                "trunk": self.net_g}

    def run_stages(self, stages: Mapping[str, Callable], lr: Tensor, lr_up: Tensor, ref: Tensor,
                   valid_size: Optional[Tensor] = None) -> Tensor:
        """``forward`` with the given stage callables (``stage_modules`` or wrapped versions of them)."""
        feat_in, feat_ref = stages["ccn"](lr_up.to(self._ccn_dtype()), ref.to(self._ccn_dtype()))
        pre_offset = stages["matching"](feat_in, feat_ref)
        del feat_in, feat_ref
        ref_feats = stages["vgg19"](ref.to(self.net_map.vgg.features[0].weight.dtype))
        return stages["trunk"](lr, pre_offset, ref_feats, valid_size)

    def _ccn_dtype(self) -> torch.dtype:
        return self.net_extractor.feature_extraction_image1.mean.dtype

    def correspond(self, lr_up: Tensor, ref: Tensor) -> tuple[dict, dict]:
        """Pre-offsets from (LR-upsampled input, reference), and the VGG19 features of the reference."""
        dtype = self._ccn_dtype()
        feat_in, feat_ref = self.net_extractor(lr_up.to(dtype), ref.to(dtype))
        return self.net_map(feat_in, feat_ref, ref)

    def check_inputs(self, lr: Tensor, lr_up: Tensor, ref: Tensor) -> None:
        h, w = lr.shape[-2:]
        for name, t in (("lr_up", lr_up), ("ref", ref)):
            if t.shape[-2:] != (4 * h, 4 * w) or t.shape[0] != lr.shape[0]:
                raise ValueError(f"{name} must be (B, 3, {4 * h}, {4 * w}) for an LR of {h}x{w}, "
                                 f"got {tuple(t.shape)}")

    def forward(self, lr: Tensor, lr_up: Tensor, ref: Tensor, valid_size: Optional[Tensor] = None) -> Tensor:
        """lr (B,3,h,w), lr_up (B,3,4h,4w) = PIL-bicubic x4 of lr (used only for matching), ref (B,3,4h,4w), all
        RGB in [0, 1]. Returns the unclamped SR (B,3,4h,4w)."""
        self.check_inputs(lr, lr_up, ref)
        return self.run_stages(self.stage_modules(), lr, lr_up, ref, valid_size)
