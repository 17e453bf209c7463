"""Correspondence stage: dense 3x3 patch matching between CCN features, index -> flow, the nine shifted
pre-offsets per scale, and the frozen VGG19 reference features (the authors' ``CorrespondenceGenerationArch``).

Matching is exact top-1 with the first maximum winning ties (as ``torch.max`` and the authors' running max do):
the ``rrsr::patch_match`` op (``rrsr_model/ops/patch_match.py``, bounded memory) or, for standard-operator
export, one batched matrix product.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops.patch_match import PATCH_NORM_EPS, patch_match
from .vgg import VGG19Features


def patches_as_channels(feat: Tensor, patch_size: int = 3) -> Tensor:
    """(B, C, H, W) -> (B, C*k*k, H_p, W_p): every k x k patch (stride 1) as a column in ``unfold`` order
    (channel-major, then tap), computed as a depthwise conv with one-hot kernels so it exports as one Conv."""
    c, kk = feat.shape[1], patch_size * patch_size
    onehot = torch.eye(kk, dtype=feat.dtype, device=feat.device).reshape(kk, 1, patch_size, patch_size)
    return F.conv2d(feat, onehot.repeat(c, 1, 1, 1), groups=c)


def dense_match_index(feat_in: Tensor, feat_ref: Tensor, patch_size: int = 3) -> Tensor:
    """Batched, unchunked form of :func:`rrsr_model.ops.patch_match.feature_match_index` for export: (B, C, H, W) per-pixel-normalised
    features -> (B, H_p, W_p) best reference patch index (first maximum), as float32. The same scores as a
    (N_ref x N_in) matrix product, so memory grows as (H*W)^2: fine for small images, see the docs."""
    p_in = patches_as_channels(feat_in, patch_size)
    p_ref = patches_as_channels(feat_ref, patch_size)
    b, d, h_p, w_p = p_in.shape
    p_ref = p_ref.flatten(2)
    p_ref = p_ref / (p_ref.norm(p=2, dim=1, keepdim=True) + PATCH_NORM_EPS)
    corr = torch.bmm(p_ref.transpose(1, 2), p_in.flatten(2))            # (B, N_ref, N_in)
    return corr.argmax(dim=1).reshape(b, h_p, w_p).float()


def index_to_flow(idx: Tensor, patch_size: int = 3) -> Tensor:
    """(B, H_p, W_p) best-patch index -> (B, H_p + k - 1, W_p + k - 1, 2) flow (x, y) in feature pixels,
    zero-padded bottom/right. The index is decoded with the *input's* patch-grid width (the authors'
    convention, which is why the reference must have the input's size). Float arithmetic (exact for indices
    below 2^24) keeps integer Div/Mod out of exported graphs."""
    h, w = idx.shape[-2:]
    idx = idx.float()
    fy = torch.floor(idx / w)
    fx = idx - fy * w
    # integer ranges, then cast: TensorRT takes a float Range only with constant bounds
    gy = torch.arange(h, device=idx.device).float().view(1, h, 1)
    gx = torch.arange(w, device=idx.device).float().view(1, 1, w)
    flow = torch.stack((fx - gx, fy - gy), dim=-1)
    return F.pad(flow, (0, 0, 0, patch_size - 1, 0, patch_size - 1))


def shifted_pre_offsets(flow: Tensor, scale: int) -> Tensor:
    """(B, h, w, 2) flow at 1x -> (B, 9, h*s, w*s, 2): nearest-upscaled by s, values times s, and shifted by
    s*(i, j) for tap k = 3i + j with zero fill (the authors' ``tensor_shift``, done as pad + crop)."""
    b, h, w, _ = flow.shape
    if scale != 1:
        flow = flow[:, :, None, :, None, :].expand(b, h, scale, w, scale, 2).reshape(b, h * scale, w * scale, 2)
        flow = flow * scale
    hs, ws = h * scale, w * scale
    shifted = []
    for i in range(3):
        for j in range(3):
            shifted.append(F.pad(flow, (0, 0, scale * j, 0, scale * i, 0))[:, :hs, :ws, :])
    return torch.stack(shifted, dim=1)


class CorrespondenceGeneration(nn.Module):
    """Matches CCN features and returns the pre-offsets for relu3_1 / relu2_1 / relu1_1 plus the VGG19
    reference features. Holds the frozen VGG19 (not part of the official checkpoints).

    ``matcher`` picks how the top-1 patch is found: ``"op"`` (default; the ``rrsr::patch_match`` custom op,
    whose reference kernel is the authors' convolution over chunks of reference patches with a running max —
    bounded memory — and which the plugin-flavour export emits as ``RrsrPatchMatch``) or ``"dense"`` (one
    batched matrix product of standard operators; what the standard ONNX export uses, memory (h*w)^2). Both
    find the same patch up to float rounding."""

    SCALES = {"relu3_1": 1, "relu2_1": 2, "relu1_1": 4}
    MATCHERS = ("op", "dense")

    def __init__(self, patch_size: int = 3, stride: int = 1):
        super().__init__()
        self.patch_size = patch_size
        self.stride = stride
        self.matcher = "op"
        self.vgg = VGG19Features()

    def match_index(self, feat_in: Tensor, feat_ref: Tensor) -> Tensor:
        """(B, H_p, W_p) best reference patch per input patch; inputs are raw CCN features."""
        if self.matcher == "op":
            return patch_match(feat_in, feat_ref, self.patch_size)[0]
        if self.matcher != "dense":
            raise ValueError(f"unknown matcher {self.matcher!r}; choose one of {self.MATCHERS}")
        fi = F.normalize(feat_in.float(), dim=1)
        fr = F.normalize(feat_ref.float(), dim=1)
        return dense_match_index(fi, fr, self.patch_size)

    def match(self, feat_in: Tensor, feat_ref: Tensor) -> dict[str, Tensor]:
        """Pre-offsets (B, 9, H_s, W_s, 2), (x, y) last, per VGG layer. The argmax carries no gradient."""
        with torch.no_grad():
            flow = index_to_flow(self.match_index(feat_in, feat_ref), self.patch_size)
            return {name: shifted_pre_offsets(flow, s) for name, s in self.SCALES.items()}

    def forward(self, feat_in: Tensor, feat_ref: Tensor, img_ref: Tensor) -> tuple[dict, dict]:
        return self.match(feat_in, feat_ref), self.vgg(img_ref.to(self.vgg.features[0].weight.dtype))
