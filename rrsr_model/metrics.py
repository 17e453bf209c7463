"""PSNR / SSIM on the BT.601 luma with a 4-px border, as the authors evaluate (spec §6).

Images are uint8 (H, W, 3) RGB (an SR is clamped and rounded first, see ``images.to_uint8``)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

CROP_BORDER = 4


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr luma in float64 on 0..255, without rounding."""
    x = img.astype(np.float64) / 255.0
    return x @ np.array([65.481, 128.553, 24.966]) + 16.0


def _crop(y: np.ndarray, border: int) -> np.ndarray:
    return y[border:-border, border:-border] if border else y


def _check(a: np.ndarray, b: np.ndarray):
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")


def psnr(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """PSNR (peak 255) of two arrays on the same 0..255 scale."""
    _check(a, b)
    mse = np.mean((_crop(a.astype(np.float64), border) - _crop(b.astype(np.float64), border)) ** 2)
    return float("inf") if mse == 0 else float(20 * np.log10(255.0 / np.sqrt(mse)))


def psnr_y(a: np.ndarray, b: np.ndarray, border: int = CROP_BORDER) -> float:
    return psnr(rgb_to_y(a), rgb_to_y(b), border)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """SSIM of two single-channel 0..255 images: 11x11 Gaussian (sigma 1.5), valid-region mean."""
    _check(a, b)
    x = torch.from_numpy(_crop(a.astype(np.float64), border))[None, None]
    y = torch.from_numpy(_crop(b.astype(np.float64), border))[None, None]
    w = _gaussian_window()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = F.conv2d(x, w), F.conv2d(y, w)
    sxx = F.conv2d(x * x, w) - mx ** 2
    syy = F.conv2d(y * y, w) - my ** 2
    sxy = F.conv2d(x * y, w) - mx * my
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    return float(m.mean())


def ssim_y(a: np.ndarray, b: np.ndarray, border: int = CROP_BORDER) -> float:
    return ssim(rgb_to_y(a), rgb_to_y(b), border)
