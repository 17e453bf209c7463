"""RTRR reference warp (spec §5.4; the authors' ``image_pair_generation_perspective``).

The HR reference is warped by a random homography; the network must rebuild this warped reference from its
LR version using its own SR output as the reference (the reciprocal loss). Draws follow the authors' numpy
``randint`` semantics (upper bound exclusive) but from an explicit ``numpy.random.Generator``.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# |corner displacement| in HR pixels is drawn from [5, 20) = 5..19, each with a random sign.
PERTURB_RANGE = (5, 20)


@dataclass
class RTRRWarp:
    image: np.ndarray        # uint8 (H, W, 3): the warped reference, 0 where no source pixel maps
    homography: np.ndarray   # 3x3 H: window corners -> perturbed corners (the image is warped by H^-1)
    corners: np.ndarray      # (4, 2) float32 window corners (x, y): top-left, top-right, bottom-right, bottom-left
    deltas: np.ndarray       # (4, 2) int64 corner displacements (dx, dy), each in [-19, -5] U [5, 19]


def warp_reference(ref: np.ndarray, rng: np.random.Generator,
                   perturb_range: tuple[int, int] = PERTURB_RANGE) -> RTRRWarp:
    """Warp a uint8 (H, W, 3) reference as the authors do for their 160x160 patches, with 160 generalised
    to the patch size: a window the size of the image, top-left drawn from [hi, W) x [hi, H) (it may extend
    past the image), each corner moved by +-[lo, hi) px in x and y independently, H from window to moved
    corners, output = warpPerspective(ref, H^-1, (W, H), INTER_CUBIC) with a black border."""
    h, w = ref.shape[:2]
    lo, hi = perturb_range
    if min(h, w) <= hi:
        raise ValueError(f"RTRR warp needs a reference larger than {hi}x{hi} px, got {h}x{w}")
    # authors: randint(hi, max(w, w - crop - hi)), which is randint(hi, w)
    x0, y0 = int(rng.integers(hi, w)), int(rng.integers(hi, h))
    corners = np.array([[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h]], dtype=np.float32)
    while True:
        deltas = rng.integers(lo, hi, size=(4, 2)) * rng.choice(np.array([-1, 1]), size=(4, 2))
        homography = cv2.getPerspectiveTransform(corners, (corners + deltas).astype(np.float32))
        # at 160 px this never triggers; on small patches a +-19 px move can make three corners collinear
        if abs(np.linalg.det(homography)) > 1e-9:
            break
    image = cv2.warpPerspective(ref, np.linalg.inv(homography), (w, h), flags=cv2.INTER_CUBIC,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return RTRRWarp(image, homography, corners, deltas.astype(np.int64))
