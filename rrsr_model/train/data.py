"""Training samples for restoration training (spec §1.0, §5.1, §5.4).

Each sample is a dict of float32 (3, H, W) RGB tensors in [0, 1]:

* ``hr`` (gt x gt): a random ``gt_size`` crop of a training image;
* ``lr`` (gt/4) = PIL bicubic /4 of ``hr``; ``lr_up`` (gt) = PIL bicubic x4 of ``lr`` (used for matching);
* ``ref`` (gt x gt): the reference, see below;
* ``ref_w``, ``ref_w_lq``, ``ref_w_up``: the RTRR-warped reference and its LR / LR-upsampled versions.

References. With a reference folder, each image is paired with the file of the same name stem there (as
CUFED's ``input/`` and ``ref/``) and that file is resized whole to gt x gt with PIL bicubic, as the authors
do (their HR images are gt x gt, so the crop is the whole image; a larger HR is cropped, its reference is
not). Without a reference folder, the reference is synthesised from the same image: a *different,
overlapping* crop (shifted by up to half a patch), seen through a random affine warp (rotation, scale,
shear) and a small colour jitter. This gives true but misaligned correspondences, the situation the
matching and alignment stages learn from; it is a stand-in for real reference pairs, not the paper's recipe.

Flips / transpose are applied identically to ``hr`` and ``ref``, before the RTRR warp (as the authors).

Sampling is by a global sample number ``k`` (see :class:`SampleStream`): the image is the ``k mod N``-th of a
per-epoch permutation and all randomness of the sample comes from a generator seeded with (seed, k). The data
are thus a function of (seed, k) alone, whatever the number of workers, and a resumed run continues with
exactly the samples the uninterrupted run would have used.
"""
from __future__ import annotations

import itertools
import warnings
from pathlib import Path
from typing import Iterator, Optional

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler

from ..images import SCALE, pil_bicubic
from .rtrr import PERTURB_RANGE, warp_reference

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MIN_GT_SIZE = 24   # > the RTRR window offset (20 px) and a multiple of 4

# Synthetic-reference distortion ranges (no reference folder).
_SYNTH_ROTATION_DEG = 10.0
_SYNTH_LOG_SCALE = np.log(1.15)
_SYNTH_SHEAR = 0.1
_SYNTH_JITTER = 0.1            # brightness / contrast / saturation factors in [0.9, 1.1]


class DataError(ValueError):
    """Unusable training data; the message names the folder or file."""


def check_gt_size(gt_size: int) -> int:
    if gt_size % SCALE or gt_size < MIN_GT_SIZE:
        raise ValueError(f"gt_size must be a multiple of {SCALE} and at least {MIN_GT_SIZE} (the RTRR window "
                         f"offset is up to 20 px), got {gt_size}")
    return gt_size


def list_images(folder, what: str = "training") -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{what} image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{what} image folder {folder} holds no PNG/JPG images")
    return files


def _probe(path: Path) -> tuple[int, int, str]:
    try:
        with Image.open(path) as im:
            return im.width, im.height, im.mode
    except Exception as e:  # PIL raises several types for unreadable files
        raise DataError(f"cannot read image {path}: {e}") from None


def _names(items: list[str], limit: int = 5) -> str:
    return ", ".join(items[:limit]) + (" ..." if len(items) > limit else "")


def _warn(message: str, items: list[str]) -> None:
    """One warning for a whole list of files (``{n}`` in ``message`` becomes its length)."""
    if items:
        warnings.warn(f"{message.replace('{n}', str(len(items)))}: {_names(items)}", stacklevel=4)


def read_rgb(path: Path) -> np.ndarray:
    """uint8 (H, W, 3); non-RGB files were announced at scan time and are converted here."""
    with Image.open(path) as im:
        return np.asarray(im if im.mode == "RGB" else im.convert("RGB"))


def to_chw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0)


def degrade(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(LR, LR upsampled) with PIL bicubic on uint8 RGB, as the authors make them."""
    h, w = img.shape[:2]
    lq = pil_bicubic(img, (h // SCALE, w // SCALE))
    return lq, pil_bicubic(lq, (h, w))


def augment(images: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """The authors' augment: hflip, vflip and transpose, each with p = 0.5, the same for all images."""
    hflip, vflip, transpose = rng.random(3) < 0.5
    out = []
    for img in images:
        if hflip:
            img = img[:, ::-1]
        if vflip:
            img = img[::-1]
        if transpose:
            img = img.transpose(1, 0, 2)
        out.append(np.ascontiguousarray(img))
    return out


def synth_reference(image: np.ndarray, top: int, left: int, gt: int, rng: np.random.Generator) -> np.ndarray:
    """A gt x gt reference from an overlapping crop of ``image`` near the HR crop at (top, left), warped by a
    random affine map and colour-jittered (see the module docstring)."""
    h, w = image.shape[:2]
    # centre of the reference crop: shifted by up to half a patch, kept inside the image
    cy = np.clip(top + rng.uniform(-gt / 2, gt / 2), 0, h - gt) + gt / 2
    cx = np.clip(left + rng.uniform(-gt / 2, gt / 2), 0, w - gt) + gt / 2
    angle = np.deg2rad(rng.uniform(-_SYNTH_ROTATION_DEG, _SYNTH_ROTATION_DEG))
    scale = np.exp(rng.uniform(-_SYNTH_LOG_SCALE, _SYNTH_LOG_SCALE))
    shear = rng.uniform(-_SYNTH_SHEAR, _SYNTH_SHEAR)
    c, s = np.cos(angle), np.sin(angle)
    lin = scale * np.array([[c, -s], [s, c]]) @ np.array([[1.0, shear], [0.0, 1.0]])
    # output pixel (u, v) samples the source at lin @ (u - gt/2, v - gt/2) + (cx, cy)
    m = np.hstack([lin, (np.array([cx, cy]) - lin @ np.array([gt / 2, gt / 2]))[:, None]])
    ref = cv2.warpAffine(image, m, (gt, gt), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REFLECT_101).astype(np.float32)
    lo, hi = 1 - _SYNTH_JITTER, 1 + _SYNTH_JITTER
    gray = ref @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    ref = gray[..., None] + rng.uniform(lo, hi) * (ref - gray[..., None])        # saturation
    ref = ref.mean() + rng.uniform(lo, hi) * (ref - ref.mean())                   # contrast
    ref = ref * rng.uniform(lo, hi)                                               # brightness
    return np.clip(ref + 0.5, 0, 255).astype(np.uint8)


class RefSRTrainSet(Dataset):
    """Training samples over ``data_dir`` (PNG/JPG), references from ``ref_dir`` or synthesised.

    Images smaller than ``gt_size`` are skipped with a warning naming them; grayscale / RGBA / palette files
    are converted to RGB with one warning. ``ds[k]`` accepts any global sample number k >= 0 (``len(ds)`` is
    the number of usable images, one epoch)."""

    def __init__(self, data_dir, ref_dir=None, gt_size: int = 160, seed: int = 10):
        self.gt_size = check_gt_size(gt_size)
        self.seed = seed
        self.files = self._scan(list_images(data_dir), data_dir)
        self.refs: Optional[list[Path]] = None if ref_dir is None else self._pair(ref_dir)

    def _scan(self, files: list[Path], data_dir) -> list[Path]:
        usable, small, converted = [], [], []
        for p in files:
            w, h, mode = _probe(p)
            if min(w, h) < self.gt_size:
                small.append(f"{p.name} ({w}x{h})")
                continue
            if mode != "RGB":
                converted.append(f"{p.name} ({mode})")
            usable.append(p)
        _warn(f"skipping {{n}} image(s) in {data_dir} smaller than gt_size {self.gt_size}", small)
        _warn(f"{{n}} image(s) in {data_dir} are not RGB and will be converted", converted)
        if not usable:
            raise DataError(f"no image in {data_dir} is at least gt_size {self.gt_size} px on each side")
        return usable

    def _pair(self, ref_dir) -> list[Path]:
        by_stem = {p.stem: p for p in list_images(ref_dir, "reference")}
        missing = [p.name for p in self.files if p.stem not in by_stem]
        if missing:
            raise DataError(f"{len(missing)} training image(s) have no reference of the same name in {ref_dir}: "
                            f"{_names(missing)}")
        refs = [by_stem[p.stem] for p in self.files]
        modes = [_probe(p)[2] for p in refs]
        converted = [f"{p.name} ({m})" for p, m in zip(refs, modes) if m != "RGB"]
        _warn(f"{{n}} reference(s) in {ref_dir} are not RGB and will be converted", converted)
        return refs

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        if k < 0:
            raise IndexError(f"sample number must be >= 0, got {k}")
        n, gt = len(self.files), self.gt_size
        epoch, pos = divmod(int(k), n)
        # the 0 / 1 tag keeps the epoch-permutation and per-sample streams apart
        idx = int(np.random.default_rng([self.seed, 0, epoch]).permutation(n)[pos])
        rng = np.random.default_rng([self.seed, 1, int(k)])

        image = read_rgb(self.files[idx])
        h, w = image.shape[:2]
        top, left = int(rng.integers(0, h - gt + 1)), int(rng.integers(0, w - gt + 1))
        hr = image[top:top + gt, left:left + gt]
        if self.refs is None:
            ref = synth_reference(image, top, left, gt, rng)
        else:
            ref = pil_bicubic(read_rgb(self.refs[idx]), (gt, gt))
        hr, ref = augment([hr, ref], rng)
        ref_w = warp_reference(ref, rng, PERTURB_RANGE).image
        lr, lr_up = degrade(hr)
        ref_w_lq, ref_w_up = degrade(ref_w)
        arrays = {"hr": hr, "lr": lr, "lr_up": lr_up, "ref": ref,
                  "ref_w": ref_w, "ref_w_lq": ref_w_lq, "ref_w_up": ref_w_up}
        return {name: to_chw(a) for name, a in arrays.items()}


class SampleStream(Sampler[int]):
    """Endless global sample numbers start, start+1, ...; a run resumed at iteration t with batch B starts
    at t*B."""

    def __init__(self, start: int = 0):
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return itertools.count(self.start)
