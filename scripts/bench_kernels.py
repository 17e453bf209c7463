#!/usr/bin/env python3
"""Benchmark the RRSR CUDA kernels (plugins/torch) on the GPU: MDCN vs torchvision.ops.deform_conv2d vs a
same-shape cuDNN conv2d, and PatchMatch vs the PyTorch reference matching. Prints tables, writes JSON.

    PYTHONPATH=. python3 scripts/bench_kernels.py --json build/bench.json [--budget-s 200] [--cap-s 20]

Times: median of CUDA-event timings after warm-up. Memory: torch.cuda.max_memory_allocated() minus the memory
allocated before the call (includes the output). Any single measurement predicted (from one timed call or the
previous size's time scaled by work) to exceed --cap-s is skipped, and so is everything after --budget-s, so the
script ends in bounded time. TF32 is off: every FP32 number here is true FP32 (as our kernel is).
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rrsr_model.ops.mdcn import mdcn_reference  # noqa: E402
from rrsr_model.ops.patch_match import patch_match_reference  # noqa: E402

MDCN_SHAPES = [(256, 40), (128, 80), (64, 160), (256, 160), (128, 320), (64, 640)]  # RRSR's stages, then x16 area
PM_SIZES = [(83, 125), (135, 240), (270, 480)]                                    # LR sizes; CCN features 256 ch
OFFSET_GROUP = 8


class Budget:
    def __init__(self, total_s, cap_s):
        self.t0, self.total, self.cap = time.monotonic(), total_s, cap_s

    def left(self):
        return self.total - (time.monotonic() - self.t0)


def _once(fn):
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    fn()
    e.record()
    e.synchronize()
    return s.elapsed_time(e) / 1e3


def bench(fn, budget, warmup=3, iters=20, predicted_s=None):
    """-> dict(ms=median ms, runs=n, peak_mb=extra peak MiB) or dict(skipped=reason)."""
    cap = min(budget.cap, max(0.0, budget.left()))
    if predicted_s is not None and predicted_s > cap:
        return {"skipped": f"predicted {predicted_s:.1f} s > {cap:.1f} s"}
    if cap <= 0:
        return {"skipped": "time budget spent"}
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    try:
        t1 = _once(fn)  # first call: also warm-up and the memory measurement
    except torch.cuda.OutOfMemoryError as e:
        return {"skipped": f"OOM: {str(e)[:120]}"}
    peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
    times = [t1]
    if t1 * (warmup + iters) <= cap:
        for _ in range(warmup):
            fn()
        times = [_once(fn) for _ in range(iters)]
    elif t1 * 3 <= cap:
        times = [_once(fn) for _ in range(max(1, min(iters, int(cap / t1) - 1)))]
    return {"ms": statistics.median(times) * 1e3, "runs": len(times), "peak_mb": peak_mb}


def fmt(r):
    if r is None:
        return "-"
    if "skipped" in r:
        return "skip"
    return f"{r['ms']:9.3f} ms {r['peak_mb']:7.1f} MiB"


def bench_mdcn(ext, budget, iters):
    try:
        from torchvision.ops import deform_conv2d
    except Exception as e:  # noqa: BLE001
        print(f"torchvision unavailable ({e}); its columns are skipped")
        deform_conv2d = None
    rows = []
    print("\n== MDCN 3x3, pad 1, offset_group 8, with mask, N=1 (C_in = C_out) ==")
    print(f"{'shape':>12} {'dtype':>5} | {'ours':>22} | {'torchvision':>22} | {'cudnn conv2d':>22} | "
          f"{'fp16 err ours':>13} {'fp16 err tv':>12}")
    for c, s in MDCN_SHAPES:
        g = torch.Generator(device="cuda").manual_seed(0)
        x = torch.randn(1, c, s, s, device="cuda", generator=g)
        w = torch.randn(c, c, 3, 3, device="cuda", generator=g) / math.sqrt(9 * c)
        b = torch.randn(c, device="cuda", generator=g)
        off = torch.randn(1, 2 * OFFSET_GROUP * 9, s, s, device="cuda", generator=g) * 2.0
        m = torch.rand(1, OFFSET_GROUP * 9, s, s, device="cuda", generator=g)
        a = ([1, 1], [1, 1, 1, 1], [1, 1], 1, OFFSET_GROUP)
        for dt in (torch.float32, torch.float16):
            xs, ws, bs, os_, ms = (t.to(dt) for t in (x, w, b, off, m))
            row = {"c": c, "hw": s, "dtype": str(dt).split(".")[-1]}
            row["ours"] = bench(lambda: ext.mdcn_forward(xs, ws, os_, bs, ms, *a), budget, iters=iters)
            row["torchvision"] = (bench(lambda: deform_conv2d(xs, os_, ws, bs, padding=(1, 1), mask=ms), budget,
                                        iters=iters) if deform_conv2d else None)
            row["conv2d"] = bench(lambda: F.conv2d(xs, ws, bs, padding=1), budget, iters=iters)
            if dt == torch.float16 and budget.left() > 0:
                with torch.no_grad():
                    want = mdcn_reference(xs.float(), ws.float(), os_.float(), bs.float(), ms.float(), *a)
                    row["fp16_err_ours"] = (ext.mdcn_forward(xs, ws, os_, bs, ms, *a).float() - want).abs().max().item()
                    if deform_conv2d:
                        tv = deform_conv2d(xs, os_, ws, bs, padding=(1, 1), mask=ms)
                        row["fp16_err_torchvision"] = (tv.float() - want).abs().max().item()
                    row["ref_absmax"] = want.abs().max().item()
                del want
            rows.append(row)
            e1 = f"{row['fp16_err_ours']:.3g}" if "fp16_err_ours" in row else ""
            e2 = f"{row['fp16_err_torchvision']:.3g}" if "fp16_err_torchvision" in row else ""
            print(f"{c:>5}@{s:>4}^2 {'fp' + row['dtype'][5:]:>5} | {fmt(row['ours']):>22} | {fmt(row['torchvision']):>22} | "
                  f"{fmt(row['conv2d']):>22} | {e1:>13} {e2:>12}", flush=True)
    return rows


def _ccn_like(h, w, c=256, seed=0):
    # smooth, correlated features (as a CNN gives), and a reference that is a shifted, noisy copy
    g = torch.Generator(device="cuda").manual_seed(seed)
    f = F.interpolate(torch.randn(1, c, h // 4 + 1, w // 4 + 1, device="cuda", generator=g), size=(h, w),
                      mode="bilinear", align_corners=False)
    f = f + 0.3 * torch.randn(1, c, h, w, device="cuda", generator=g)
    ref = torch.roll(f, shifts=(7, -11), dims=(2, 3)) + 0.1 * torch.randn(1, c, h, w, device="cuda", generator=g)
    return f.contiguous(), ref.contiguous()


def bench_patch_match(ext, budget, iters):
    rows = []
    print("\n== PatchMatch, k=3, 256 channels at the LR size, F_ref same size as F_in ==")
    print(f"{'LR size':>9} | {'ours fp32':>22} | {'ours fp16':>22} | {'reference fp32':>22} | idx mismatches")
    prev = {}
    for h, w in PM_SIZES:
        work = float((h - 2) * (w - 2)) ** 2
        fi, fr = _ccn_like(h, w)
        fi16, fr16 = fi.half(), fr.half()
        row = {"h": h, "w": w}

        def pred(key):  # scale the previous size's time by the work ratio
            return None if key not in prev else prev[key][0] * work / prev[key][1]

        for key, fn in (("ours_fp32", lambda: ext.patch_match_forward(fi, fr, 3)),
                        ("ours_fp16", lambda: ext.patch_match_forward(fi16, fr16, 3)),
                        ("reference_fp32", lambda: patch_match_reference(fi, fr, 3))):
            row[key] = bench(fn, budget, warmup=1, iters=min(iters, 5), predicted_s=pred(key))
            if "ms" in row[key]:
                prev[key] = (row[key]["ms"] / 1e3, work)
        if "ms" in row["ours_fp32"] and "ms" in row["reference_fp32"]:
            i1, s1 = ext.patch_match_forward(fi, fr, 3)
            i2, s2 = patch_match_reference(fi, fr, 3)
            row["index_mismatches"] = int((i1 != i2).sum())
            row["score_max_abs_diff"] = (s1 - s2).abs().max().item()
        rows.append(row)
        print(f"{h:>4}x{w:<4} | {fmt(row['ours_fp32']):>22} | {fmt(row['ours_fp16']):>22} | "
              f"{fmt(row['reference_fp32']):>22} | {row.get('index_mismatches', '-')}", flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, required=True, help="where to write the results")
    ap.add_argument("--budget-s", type=float, default=200.0, help="stop measuring after this many seconds")
    ap.add_argument("--cap-s", type=float, default=20.0, help="skip a measurement predicted to exceed this")
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_kernels.py: CUDA is not available")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    import plugins.torch as pt
    t = time.monotonic()
    ext = pt.build()
    print(f"extension ready in {time.monotonic() - t:.1f} s")
    budget = Budget(args.budget_s, args.cap_s)
    props = torch.cuda.get_device_properties(0)
    result = {"device": props.name, "sm_count": props.multi_processor_count, "torch": torch.__version__,
              "cuda": torch.version.cuda, "python": platform.python_version(), "tf32": False}
    try:
        import torchvision
        result["torchvision"] = torchvision.__version__
    except Exception:  # noqa: BLE001
        pass
    with torch.no_grad():
        result["mdcn"] = bench_mdcn(ext, budget, args.iters)
        result["patch_match"] = bench_patch_match(ext, budget, args.iters)
    result["elapsed_s"] = time.monotonic() - budget.t0
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {args.json} ({result['elapsed_s']:.1f} s)")


if __name__ == "__main__":
    main()
