"""The authors' test-path pre-processing and the SR post-processing on uint8 numpy arrays, with numpy and Pillow
only (no torch): ``rrsr_model.prepare_inputs`` is built on it, and ``rrsr-triton-repo`` copies this file into the
Triton Python models that pre- and post-process beside an engine in a stock Triton container.

Reference size. The network decodes match indices with the input's width, so the reference must have the SR's
size. Like the authors' test set-up, a reference of another size is mod-4 cropped and both images are zero-padded
bottom/right to the common size (max of each side); RAS means then cover only the valid (unpadded) region and the
SR is cropped back. The authors pad the HR and then downsample; we are given the LR, so we pad the LR by 1/4 of
the HR padding (identical away from the padded border).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

SCALE = 4
MIN_LR_SIDE = 3            # one 3x3 patch on the 1/4-resolution feature grid
MIN_REF_SIDE = 3 * SCALE


def check_rgb_uint8(img, name: str) -> np.ndarray:
    """Return ``img`` as a C-contiguous uint8 (H, W, 3) array, or raise ValueError saying what is wrong."""
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name}: expected a numpy uint8 array of shape (H, W, 3), got {type(img).__name__}")
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        raise ValueError(f"{name}: grayscale image of shape {img.shape}; RRSR needs RGB (H, W, 3) — convert it "
                         f"first (e.g. PIL Image.convert('RGB'))")
    if img.ndim == 3 and img.shape[2] == 4:
        raise ValueError(f"{name}: RGBA image of shape {img.shape}; RRSR needs RGB (H, W, 3) — drop or composite "
                         f"the alpha channel first")
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"{name}: expected shape (H, W, 3), got {img.shape}")
    if img.dtype != np.uint8:
        raise ValueError(f"{name}: expected dtype uint8 (0..255), got {img.dtype}")
    if img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"{name}: empty image of shape {img.shape}")
    return np.ascontiguousarray(img)


def pil_bicubic(img: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """PIL bicubic resize of a uint8 RGB image to (H, W), as the authors make LR and LR-upsampled images."""
    h, w = size_hw
    return np.asarray(Image.fromarray(img).resize((w, h), Image.BICUBIC))


def mod_crop(img: np.ndarray, scale: int = SCALE) -> np.ndarray:
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def pad_to(img: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Zero-pad bottom/right to (H, W)."""
    h, w = img.shape[:2]
    out = np.zeros((size_hw[0], size_hw[1], img.shape[2]), dtype=img.dtype)
    out[:h, :w] = img
    return out


@dataclass
class PreparedArrays:
    lr: np.ndarray             # (h', w', 3) uint8, the LR padded to a quarter of the reference's size
    lr_up: np.ndarray          # (4h', 4w', 3) uint8, PIL bicubic x4 of the padded LR
    ref: np.ndarray            # (4h', 4w', 3) uint8, the mod-4 cropped, padded reference
    out_hw: tuple[int, int]    # the SR's size, 4x the LR: what the SR is cropped back to
    padded: bool               # whether anything was padded (the network then needs valid_size = out_hw)


def prepare_arrays(lr: np.ndarray, ref: np.ndarray) -> PreparedArrays:
    """Check, crop and pad an LR and a reference (uint8 (H, W, 3) RGB) and make the LR-up, as the authors' test
    path does; ValueError (naming ``lr`` or ``ref``) for what RRSR cannot use."""
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
    return PreparedArrays(lr, pil_bicubic(lr, target), ref, out_hw, padded)


def to_nchw_float(img: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (1, 3, H, W) in [0, 1] (the same IEEE division as ``images.to_tensor``)."""
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32) / np.float32(255.0)


def sr_to_uint8(sr: np.ndarray) -> np.ndarray:
    """(3, H, W) float in [0, 1] (unclamped) -> uint8 (H, W, 3), clamped and rounded as the authors evaluate."""
    return (np.clip(sr, 0.0, 1.0) * 255.0).round().astype(np.uint8).transpose(1, 2, 0)
