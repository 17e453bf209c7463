"""Pre-processing exactly as the authors' test path, and ``super_resolve``.

Reference size. The network decodes match indices with the input's width, so the reference must have the SR's
size. Like the authors' test set-up, a reference of another size is mod-4 cropped and both images are
zero-padded bottom/right to the common size (max of each side); RAS means then cover only the valid
(unpadded) region and the SR is cropped back. The authors pad the HR and then downsample; we are given the
LR, so we pad the LR by 1/4 of the HR padding (identical away from the padded border).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from .images import SCALE, check_rgb_uint8, mod_crop, pad_to, pil_bicubic, to_tensor

MIN_LR_SIDE = 3            # one 3x3 patch on the 1/4-resolution feature grid
MIN_REF_SIDE = 3 * SCALE


@dataclass
class PreparedInputs:
    lr: torch.Tensor                   # (1, 3, h', w') padded LR in [0, 1]
    lr_up: torch.Tensor                # (1, 3, 4h', 4w') PIL bicubic x4 of the padded uint8 LR
    ref: torch.Tensor                  # (1, 3, 4h', 4w') padded reference
    valid_size: Optional[torch.Tensor]  # (2,) int64 unpadded SR size, None when nothing was padded
    out_hw: tuple[int, int]            # SR size to crop back to (4h, 4w)

    def to(self, device, dtype=None) -> "PreparedInputs":
        f = (lambda t: t.to(device=device, dtype=dtype)) if dtype else (lambda t: t.to(device))
        vs = self.valid_size.to(device) if self.valid_size is not None else None
        return PreparedInputs(f(self.lr), f(self.lr_up), f(self.ref), vs, self.out_hw)


def prepare_inputs(lr: np.ndarray, ref: np.ndarray) -> PreparedInputs:
    lr = check_rgb_uint8(lr, "lr")
    ref = check_rgb_uint8(ref, "ref")
    h, w = lr.shape[:2]
    if h < MIN_LR_SIDE or w < MIN_LR_SIDE:
        raise ValueError(f"lr: {h}x{w} is too small; RRSR needs at least {MIN_LR_SIDE}x{MIN_LR_SIDE} LR pixels")
    if ref.shape[0] < MIN_REF_SIDE or ref.shape[1] < MIN_REF_SIDE:
        raise ValueError(f"ref: {ref.shape[0]}x{ref.shape[1]} is too small; a reference needs at least "
                         f"{MIN_REF_SIDE}x{MIN_REF_SIDE} pixels (one 3x3 patch on the 1/4-resolution feature grid)")
    ref = mod_crop(ref, SCALE)
    out_hw = (SCALE * h, SCALE * w)
    target = (max(out_hw[0], ref.shape[0]), max(out_hw[1], ref.shape[1]))
    padded = target != out_hw or ref.shape[:2] != out_hw
    if padded:
        lr = pad_to(lr, (target[0] // SCALE, target[1] // SCALE))
        ref = pad_to(ref, target)
    lr_up = pil_bicubic(lr, target)
    valid = torch.tensor(out_hw, dtype=torch.int64) if padded else None
    return PreparedInputs(to_tensor(lr), to_tensor(lr_up), to_tensor(ref), valid, out_hw)


@torch.no_grad()
def super_resolve(model, lr: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Super-resolve one uint8 (h, w, 3) RGB LR with a uint8 RGB reference; returns the float32 (3, 4h, 4w)
    unclamped SR as a numpy array (PyTorch FP32 on the model's device)."""
    x = prepare_inputs(lr, ref)
    p = next(model.parameters())
    x = x.to(p.device, p.dtype)
    sr = model(x.lr, x.lr_up, x.ref, x.valid_size)
    sr = sr[0, :, : x.out_hw[0], : x.out_hw[1]]
    return sr.float().cpu().numpy()
