#!/usr/bin/env python3
"""Peak activation memory of RRSR's PyTorch forward for an input size, without a GPU: the model runs on the meta
device (shapes only, no arithmetic) and every tensor an op creates is counted until it is freed.

    PYTHONPATH=. python3 scripts/profile_memory.py --lr 270x480 [--precision fp16] [--ckpt rrsr.pth] [--per-module]

Prints the peak (weights included), the op and module where it is reached, and with --per-module the live and
peak bytes after each sub-module. This counts what the model code itself allocates: the compiled kernels'
(plugins/torch) workspaces are not included (PatchMatch: at most ~140 MiB at 270x480; MDCN: none), nor the CUDA
caching allocator's rounding (on an H200 the measured peak was within 5% of this count at 1080p).
"""
from __future__ import annotations

import argparse
import sys
import weakref
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import rrsr_model  # noqa: E402
from rrsr_model.demo import DEMO_CKPT  # noqa: E402
from rrsr_model.precision import to_fp16  # noqa: E402

MiB = 2 ** 20


class LiveTensors(TorchDispatchMode):
    """Counts the bytes of every storage an op returns until the storage is garbage-collected."""

    def __init__(self, base_bytes: int = 0):
        super().__init__()
        self.live = base_bytes
        self.peak = base_bytes
        self.where = ("", "")
        self.modules: list[str] = []
        self._sizes: dict[int, int] = {}

    def _track(self, t: torch.Tensor, op: str) -> None:
        storage = t.untyped_storage()
        key = id(storage)
        if key in self._sizes:
            return
        self._sizes[key] = storage.nbytes()
        self.live += self._sizes[key]
        weakref.finalize(storage, self._release, key)
        if self.live > self.peak:
            self.peak = self.live
            self.where = (op, self.modules[-1] if self.modules else "")

    def _release(self, key: int) -> None:
        self.live -= self._sizes.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self._track(t, str(func))
        return out


def profile(model, lr_hw: tuple[int, int], precision: str, per_module: bool = False, depth: int = 3) -> LiveTensors:
    model = (to_fp16(model) if precision == "fp16" else model.float()).eval().to("meta")
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    weights += sum(b.numel() * b.element_size() for b in model.buffers())
    tracker = LiveTensors(weights)
    handles = []
    for name, module in model.named_modules():
        if not name or name.count(".") >= depth:
            continue
        handles.append(module.register_forward_pre_hook(lambda m, a, n=name: tracker.modules.append(n)))

        def after(m, a, o, n=name):
            tracker.modules.pop()
            if per_module:
                print(f"  {n:58s} live {tracker.live / MiB:8.0f} MiB   peak so far {tracker.peak / MiB:8.0f} MiB")
        handles.append(module.register_forward_hook(after))
    h, w = lr_hw
    dtype = torch.float16 if precision == "fp16" else torch.float32
    with torch.inference_mode():
        lr = torch.empty(1, 3, h, w, device="meta", dtype=dtype)
        big = torch.empty(1, 3, 4 * h, 4 * w, device="meta", dtype=dtype)
        with tracker:
            model(lr, big, big.clone())
    for hd in handles:
        hd.remove()
    return tracker


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lr", default="270x480", help="LR size HxW (the SR is 4x): default 270x480 -> 1080x1920")
    ap.add_argument("--precision", choices=("fp16", "fp32"), default="fp16")
    ap.add_argument("--ckpt", type=Path, default=DEMO_CKPT, help="bundle or generator checkpoint (for its variant)")
    ap.add_argument("--per-module", action="store_true", help="print live/peak memory after each sub-module")
    args = ap.parse_args()
    try:
        h, w = (int(v) for v in args.lr.lower().split("x"))
    except ValueError:
        sys.exit(f"--lr must be HxW, e.g. 270x480, got {args.lr!r}")
    model = rrsr_model.load_model(args.ckpt)
    tracker = profile(model, (h, w), args.precision, args.per_module)
    op, module = tracker.where
    print(f"RRSR {args.precision}, LR {h}x{w} -> SR {4 * h}x{4 * w}: peak {tracker.peak / MiB:.0f} MiB "
          f"(weights included), reached in {op} of {module or 'the top level'}")


if __name__ == "__main__":
    main()
