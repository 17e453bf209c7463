"""Dense top-1 patch matching (RRSR's correspondence stage) as one ``torch.library`` custom op.

Contract: ``plugins/ops/rrsr_patch_match.json``. Both feature maps are L2-normalised per pixel; every k x k input
patch gets the reference patch of highest score <P_in, P_ref> / (||P_ref|| + 1e-5), the first maximum on ties,
and that score. The reference kernel below is the authors' algorithm — a convolution with chunks of reference
patches and a running max — whose memory stays bounded (``MATCH_CHUNK_ELEMENTS``) whatever the image size; a
compiled kernel (``plugins/``) can replace it per device type through :func:`use_kernel`. No gradient: the
argmax is not differentiable (the authors' matching carries none either).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .dispatch import KernelTable

__all__ = ["patch_match", "patch_match_reference", "feature_match_index", "sample_patches", "use_kernel",
           "registered_kernel", "using_kernel", "MATCH_CHUNK_ELEMENTS", "PATCH_NORM_EPS"]

# Elements of the similarity chunk (reference patches x input positions) held at once: 2^26 floats = 256 MiB.
MATCH_CHUNK_ELEMENTS = 1 << 26
PATCH_NORM_EPS = 1e-5


def sample_patches(feat: Tensor, patch_size: int, stride: int = 1) -> Tensor:
    """(C, H, W) -> (C, k, k, n_patches), patches in row-major order of their top-left corner."""
    c = feat.shape[0]
    return (feat.unfold(1, patch_size, stride).unfold(2, patch_size, stride)
            .reshape(c, -1, patch_size, patch_size).permute(0, 2, 3, 1))


def feature_match_index(feat_in: Tensor, feat_ref: Tensor, patch_size: int = 3, stride: int = 1,
                        chunk_elements: int = MATCH_CHUNK_ELEMENTS) -> tuple[Tensor, Tensor]:
    """Best reference patch for every input patch of one sample.

    feat_in, feat_ref: (C, H, W), already L2-normalised per pixel. Each reference patch is divided by
    (its norm + 1e-5); the score is the inner product with the raw input patch. Returns (index, score): int64 and
    float of shape (H_p, W_p) of the input patch grid; the index is row-major over the reference patch grid.
    """
    patches = sample_patches(feat_ref, patch_size, stride)
    n_patches = patches.shape[-1]
    h_p = (feat_in.shape[1] - patch_size) // stride + 1
    w_p = (feat_in.shape[2] - patch_size) // stride + 1
    chunk = max(1, chunk_elements // max(1, h_p * w_p))
    best_val = best_idx = None
    for start in range(0, n_patches, chunk):
        batch = patches[..., start:start + chunk]
        batch = batch / (batch.norm(p=2, dim=(0, 1, 2)) + PATCH_NORM_EPS)
        corr = F.conv2d(feat_in.unsqueeze(0), batch.permute(3, 0, 1, 2), stride=stride).squeeze(0)
        val, idx = corr.max(dim=0)
        if best_val is None:
            best_val, best_idx = val, idx
        else:
            better = val > best_val  # strict: an earlier chunk keeps ties, as a global first-max would
            best_val = torch.where(better, val, best_val)
            best_idx = torch.where(better, idx + start, best_idx)
    return best_idx, best_val


def _check(feat_in: Tensor, feat_ref: Tensor, patch_size: int) -> None:
    if feat_in.dim() != 4 or feat_ref.dim() != 4:
        raise ValueError(f"patch_match: F_in and F_ref must be (N, C, H, W), got {tuple(feat_in.shape)} and "
                         f"{tuple(feat_ref.shape)}")
    if feat_in.shape[:2] != feat_ref.shape[:2]:
        raise ValueError(f"patch_match: F_in and F_ref must have equal N and C, got {tuple(feat_in.shape)} and "
                         f"{tuple(feat_ref.shape)}")
    if patch_size < 1 or patch_size > min(*feat_in.shape[2:], *feat_ref.shape[2:]):
        raise ValueError(f"patch_match: patch_size {patch_size} must be in [1, smallest side] for F_in "
                         f"{tuple(feat_in.shape)} and F_ref {tuple(feat_ref.shape)}")


def patch_match_reference(feat_in: Tensor, feat_ref: Tensor, patch_size: int = 3) -> tuple[Tensor, Tensor]:
    """(N, C, H, W) and (N, C, Hr, Wr) raw features -> index int32 and score float32, (N, H-k+1, W-k+1)."""
    _check(feat_in, feat_ref, patch_size)
    fi = F.normalize(feat_in.float(), dim=1)
    fr = F.normalize(feat_ref.float(), dim=1)
    idx, val = zip(*(feature_match_index(fi[b], fr[b], patch_size) for b in range(fi.shape[0])))
    return torch.stack(idx).to(torch.int32), torch.stack(val).float()


_KERNELS = KernelTable(patch_match_reference)


@torch.library.custom_op("rrsr::patch_match", mutates_args=())
def _patch_match_op(feat_in: Tensor, feat_ref: Tensor, patch_size: int) -> tuple[Tensor, Tensor]:
    kernel = _KERNELS.kernel(feat_in.device.type)
    index, score = kernel(feat_in, feat_ref, patch_size)
    return index.contiguous(), score.contiguous()     # as the fake kernel promises (torch.compile relies on it)


@_patch_match_op.register_fake
def _(feat_in, feat_ref, patch_size):
    shape = (feat_in.shape[0], feat_in.shape[2] - patch_size + 1, feat_in.shape[3] - patch_size + 1)
    return feat_in.new_empty(shape, dtype=torch.int32), feat_in.new_empty(shape, dtype=torch.float32)


def patch_match(feat_in: Tensor, feat_ref: Tensor, patch_size: int = 3) -> tuple[Tensor, Tensor]:
    """Best reference patch index (int32) and its score (float32) for every input patch; see the module doc."""
    if not torch.compiler.is_compiling():
        _check(feat_in, feat_ref, patch_size)
    return _patch_match_op(feat_in, feat_ref, int(patch_size))


# Routing to compiled kernels (rrsr_model.ops.dispatch.KernelTable): use_kernel(device_type, fn or None),
# registered_kernel(device_type), using_kernel(device_type, fn) as a context that restores the previous routing.
use_kernel = _KERNELS.use
registered_kernel = _KERNELS.registered
using_kernel = _KERNELS.using
