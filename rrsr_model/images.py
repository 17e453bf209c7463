"""Image I/O and the authors' pre-processing: uint8 RGB checks, PIL bicubic, padding, uint8 <-> tensor."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

SCALE = 4


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


def load_rgb(path) -> np.ndarray:
    """Read an image file as uint8 (H, W, 3) RGB. Non-RGB files (grayscale, RGBA, palette) are refused with
    the reason instead of being converted silently."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            arr = np.asarray(im)
    except Exception as e:  # PIL raises several types for unreadable files
        raise ValueError(f"cannot read image {path}: {e}") from None
    if mode != "RGB":
        raise ValueError(f"{path}: image mode is {mode!r}; RRSR needs 8-bit RGB — convert it first "
                         f"(e.g. PIL Image.open(p).convert('RGB'))")
    return check_rgb_uint8(arr, str(path))


def save_rgb(img: np.ndarray, path) -> None:
    Image.fromarray(check_rgb_uint8(img, str(path))).save(path)


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


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (1, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.array(img, dtype=np.uint8, copy=True)).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_uint8(sr: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, H, W) float in [0, 1] (unclamped) -> uint8 (H, W, 3), clamped and rounded as the authors evaluate."""
    if isinstance(sr, torch.Tensor):
        sr = sr.detach().float().cpu().numpy()
    return (np.clip(sr, 0.0, 1.0) * 255.0).round().astype(np.uint8).transpose(1, 2, 0)
