"""Image I/O and the authors' pre-processing: uint8 RGB checks, PIL bicubic, padding, uint8 <-> tensor."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

# the torch-free pre-processing lives in .preprocess (also copied into Triton Python models); re-exported here
from .preprocess import SCALE, check_rgb_uint8, mod_crop, pad_to, pil_bicubic, sr_to_uint8  # noqa: F401


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


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (1, 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.array(img, dtype=np.uint8, copy=True)).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_uint8(sr: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, H, W) float in [0, 1] (unclamped) -> uint8 (H, W, 3), clamped and rounded as the authors evaluate."""
    if isinstance(sr, torch.Tensor):
        sr = sr.detach().float().cpu().numpy()
    return sr_to_uint8(sr)
