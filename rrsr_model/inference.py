"""Pre-processing exactly as the authors' test path (``preprocess.prepare_arrays``, then tensors), and
``super_resolve``. See ``preprocess`` for how a reference of another size is cropped and padded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from .images import to_tensor
from .preprocess import MIN_LR_SIDE, MIN_REF_SIDE, SCALE, prepare_arrays  # noqa: F401 (re-exported)


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
    p = prepare_arrays(lr, ref)
    valid = torch.tensor(p.out_hw, dtype=torch.int64) if p.padded else None
    return PreparedInputs(to_tensor(p.lr), to_tensor(p.lr_up), to_tensor(p.ref), valid, p.out_hw)


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
