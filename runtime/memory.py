"""Memory estimates, so a too-large input is refused with numbers instead of an out-of-memory crash.

A standard-flavour graph (ORT, TensorRT) matches with one dense (h*w) x (h*w) float32 similarity matrix per image
(h, w = the padded LR size, the 1/4-resolution feature grid), so it grows as (h*w)^2. PyTorch and plugin-flavour
graphs (one streaming RrsrPatchMatch node) match in bounded memory; theirs is dominated by the 4x-resolution
trunk, ~linear in h*w."""
from __future__ import annotations

from typing import Optional

GiB = 2 ** 30
# 64-channel FP32 maps at 4x resolution (16*h*w pixels) that PyTorch eager holds at its peak; fitted to the
# authors' code at 1080p on an H100 (15 GiB, deployment spec 6b). A rough figure: used only to refuse clearly
TORCH_LIVE_MAPS = 28
TORCH_MATCH_CHUNK = 2 ** 28               # bytes, rrsr_model.blocks.correspondence.MATCH_CHUNK_ELEMENTS * 4
GRAPH_OVERHEAD = 2.0                      # similarity matrix + its argmax/normalised copies in flight


def dense_matching_bytes(lr_hw: tuple[int, int], batch: int = 1) -> int:
    h, w = lr_hw
    return (h * w) ** 2 * 4 * batch


def graph_bytes(lr_hw, batch: int = 1) -> int:
    return int(dense_matching_bytes(lr_hw, batch) * GRAPH_OVERHEAD) + torch_bytes(lr_hw, batch) - TORCH_MATCH_CHUNK


def torch_bytes(lr_hw, batch: int = 1, bytes_per_value: int = 4) -> int:
    h, w = lr_hw
    return TORCH_MATCH_CHUNK + batch * 16 * h * w * 64 * bytes_per_value * TORCH_LIVE_MAPS


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
               available: Optional[int] = None, matching: str = "dense") -> None:
    """MemoryError with the estimate and the free memory when ``lr_hw`` (padded LR) will not fit."""
    available = available if available is not None else available_bytes(device)
    if available is None:
        return
    h, w = lr_hw
    if backend == "torch" or matching == "streaming":
        need = torch_bytes(lr_hw, bytes_per_value=2 if precision == "fp16" else 4)
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
