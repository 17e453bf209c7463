"""Memory estimates, so a too-large input is refused with numbers instead of an out-of-memory crash.

A standard-flavour graph (ORT, TensorRT) matches with one dense (h*w) x (h*w) float32 similarity matrix per image
(h, w = the padded LR size, the 1/4-resolution feature grid), so it grows as (h*w)^2. PyTorch and plugin-flavour
graphs (one streaming RrsrPatchMatch node) match in bounded memory; theirs is dominated by the 4x-resolution
trunk, ~linear in h*w."""
from __future__ import annotations

from typing import Optional

GiB = 2 ** 30
MiB = 2 ** 20
# Peak bytes of PyTorch's forward per SR pixel (16*h*w), by (kernels, precision): measured at 1080p output on an
# H200 (2026-11-26, scripts/bench_model.py, weights included) -- reference ops FP32 8,362 MiB, FP16 7,931 MiB;
# compiled kernels (plugins/torch) FP16 3,571 MiB, FP32 5,293 MiB (with the FP32 diagonal PatchMatch, kAuto's
# choice since then; 2,800 bytes per pixel + the base are 5,793 MiB) -- each with ~10% added. Used only to refuse
# clearly.
TORCH_BYTES_PER_SR_PIXEL = {("reference", "fp32"): 4700, ("reference", "fp16"): 4500,
                            ("compiled", "fp32"): 2800, ("compiled", "fp16"): 2000}
TORCH_BASE = 256 * MiB                    # weights, the matching chunk (MATCH_CHUNK_ELEMENTS * 4) and slack
GRAPH_OVERHEAD = 2.0                      # similarity matrix + its argmax/normalised copies in flight


def dense_matching_bytes(lr_hw: tuple[int, int], batch: int = 1) -> int:
    h, w = lr_hw
    return (h * w) ** 2 * 4 * batch


def graph_bytes(lr_hw, batch: int = 1) -> int:
    return int(dense_matching_bytes(lr_hw, batch) * GRAPH_OVERHEAD) + torch_bytes(lr_hw, batch)


def torch_bytes(lr_hw, batch: int = 1, precision: str = "fp32", kernels: str = "reference") -> int:
    """PyTorch's peak for one forward (plugin-flavour graphs, which stream their matching, use the reference
    figure too: their activations are the same maps)."""
    h, w = lr_hw
    per_px = TORCH_BYTES_PER_SR_PIXEL[(kernels if kernels == "compiled" else "reference",
                                       "fp16" if precision == "fp16" else "fp32")]
    return TORCH_BASE + batch * 16 * h * w * per_px


def available_bytes(device: str = "cpu") -> Optional[int]:
    """Free memory on ``device`` (MemAvailable on the CPU, cudaMemGetInfo on a GPU); None when unknown."""
    if device.startswith("cuda"):
        try:
            import torch
            return int(torch.cuda.mem_get_info(device)[0])
        except Exception:
            return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_fits(backend: str, precision: str, device: str, lr_hw: tuple[int, int],
               available: Optional[int] = None, matching: str = "dense", kernels: str = "reference") -> None:
    """MemoryError with the estimate and the free memory when ``lr_hw`` (padded LR) will not fit. ``kernels``:
    the torch backend's ("compiled" for plugins/torch's CUDA kernels)."""
    available = available if available is not None else available_bytes(device)
    if available is None:
        return
    h, w = lr_hw
    if backend == "torch" or matching == "streaming":
        need = torch_bytes(lr_hw, precision=precision, kernels=kernels if backend == "torch" else "reference")
        what = (f"{'PyTorch' if backend == 'torch' else 'the graph'} needs about {need / GiB:.1f} GiB "
                f"(4x-resolution feature maps; matching is streamed)")
        hint = "use a smaller LR or a machine with more memory"
    else:
        need = graph_bytes(lr_hw)
        what = (f"the exported graph's dense matching matrix alone is (h*w)^2*4 = ({h}*{w})^2*4 bytes = "
                f"{dense_matching_bytes(lr_hw) / GiB:.1f} GiB (about {need / GiB:.1f} GiB in all)")
        tb = torch_bytes(lr_hw)
        hint = (f"use a smaller LR, or the torch backend (chunked matching, about {tb / GiB:.1f} GiB)"
                if tb < available else "use a smaller LR")
    if need > available:
        raise MemoryError(f"LR {h}x{w} (padded to the reference) is too large for {backend} on {device}: {what}, "
                          f"but only {available / GiB:.1f} GiB is free; {hint}")
