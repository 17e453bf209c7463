#!/usr/bin/env python3
"""Whole-model RRSR on the GPU: time, peak memory and accuracy of the FP16 and FP32 paths at a given output size
(default 1080p), with the compiled kernels (plugins/torch) and with the PyTorch reference kernels.

    PYTHONPATH=. python3 scripts/bench_model.py --json build/bench_model.json [--lr 270x480] [--budget-s 120]

Peak memory = torch.cuda.max_memory_allocated() during one forward (inference mode), weights included; the
issue's target is the FP16 compiled path at 1080p output within 4 GB. Accuracy: max abs error and PSNR (peak 1,
outputs clamped to [0, 1]) of every path against the FP32 reference path. Inputs are smooth synthetic images with
a reference that is a shifted, mirrored copy (real matches, few ties); weights are the bundled demo checkpoint.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rrsr_model  # noqa: E402
from rrsr_model.precision import to_fp16  # noqa: E402

DEMO_CKPT = ROOT / "rrsr_model" / "assets" / "demo_rrsr.pth"


def synthetic_inputs(h, w, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    lr = F.interpolate(torch.rand(1, 3, h // 8 + 1, w // 8 + 1, device="cuda", generator=g), size=(h, w),
                       mode="bicubic", align_corners=False).clamp(0, 1)
    lr = (lr + 0.05 * torch.rand(1, 3, h, w, device="cuda", generator=g)).clamp(0, 1)
    lr_up = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    ref = torch.roll(lr_up, shifts=(12, -20), dims=(2, 3)).flip(3).contiguous()
    return lr, lr_up, ref


def psnr(a, b):
    mse = (a.float().clamp(0, 1) - b.float().clamp(0, 1)).pow(2).mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def run_path(model, inputs, compiled, iters, budget_end):
    import plugins.torch as pt
    (pt.register if compiled else pt.unregister)()
    dtype = next(model.net_g.parameters()).dtype
    lr, lr_up, ref = (t.to(dtype) for t in inputs)
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    weights = torch.cuda.memory_allocated()
    with torch.inference_mode():
        t0 = time.monotonic()
        out = model(lr, lr_up, ref)
        torch.cuda.synchronize()
        first = time.monotonic() - t0
        peak = torch.cuda.max_memory_allocated()
        times = []
        for _ in range(iters):
            if time.monotonic() + first > budget_end:
                break
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            model(lr, lr_up, ref)
            e.record()
            e.synchronize()
            times.append(s.elapsed_time(e))
    pt.unregister()
    return out.float(), {"first_call_s": round(first, 3), "ms": statistics.median(times) if times else None,
                         "runs": len(times), "peak_mib": peak / 2**20, "weights_mib": weights / 2**20,
                         "peak_reserved_mib": torch.cuda.max_memory_reserved() / 2**20}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--lr", default="270x480", help="LR size HxW (output is 4x): default 270x480 -> 1080x1920")
    ap.add_argument("--ckpt", type=Path, default=DEMO_CKPT)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=150.0, help="skip timing repeats past this many seconds")
    ap.add_argument("--paths", default="fp16-compiled,fp16-reference,fp32-compiled,fp32-reference")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_model.py: CUDA is not available")
    torch.backends.cudnn.benchmark = False
    h, w = (int(v) for v in args.lr.lower().split("x"))
    import plugins.torch as pt
    pt.build()
    budget_end = time.monotonic() + args.budget_s
    inputs = synthetic_inputs(h, w)
    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "lr": [h, w],
              "output": [4 * h, 4 * w], "ckpt": args.ckpt.name, "paths": {}}
    print(f"== whole model, LR {h}x{w} -> SR {4 * h}x{4 * w}, {result['device']}, checkpoint {args.ckpt.name} ==")
    outs = {}
    # FP32 reference first: it is what every other path is compared with
    order = sorted(args.paths.split(","), key=lambda p: p != "fp32-reference")
    for name in order:
        precision, kernels = name.split("-")
        if time.monotonic() > budget_end:
            result["paths"][name] = {"skipped": "time budget spent"}
            print(f"{name:>16}: skipped (time budget spent)")
            continue
        model = rrsr_model.load_model(args.ckpt, device="cuda").eval()
        model = to_fp16(model) if precision == "fp16" else model.float()
        try:
            out, r = run_path(model, inputs, kernels == "compiled", args.iters, budget_end)
        except torch.cuda.OutOfMemoryError as e:
            r, out = {"skipped": f"OOM: {str(e)[:160]}"}, None
        del model
        if out is not None and "fp32-reference" in outs:
            ref_out = outs["fp32-reference"]
            r["max_abs_vs_fp32_reference"] = (out - ref_out).abs().max().item()
            r["psnr_vs_fp32_reference_db"] = psnr(out, ref_out)
        if out is not None and name == "fp32-reference":
            outs[name] = out
        result["paths"][name] = r
        if "skipped" in r:
            print(f"{name:>16}: skipped ({r['skipped']})")
        else:
            ms = f"{r['ms']:.1f} ms" if r["ms"] is not None else f"{r['first_call_s'] * 1e3:.0f} ms (1 call)"
            acc = (f", vs fp32-reference: max abs {r['max_abs_vs_fp32_reference']:.3g}, "
                   f"PSNR {r['psnr_vs_fp32_reference_db']:.2f} dB" if "psnr_vs_fp32_reference_db" in r else "")
            print(f"{name:>16}: {ms}, peak {r['peak_mib']:.0f} MiB (weights {r['weights_mib']:.0f} MiB, "
                  f"reserved {r['peak_reserved_mib']:.0f} MiB){acc}", flush=True)
        torch.cuda.empty_cache()
    fp16c = result["paths"].get("fp16-compiled", {})
    if "peak_mib" in fp16c:
        ok = fp16c["peak_mib"] <= 4096
        print(f"target: FP16 compiled path at {4 * h}x{4 * w} within 4 GB: peak {fp16c['peak_mib']:.0f} MiB -> "
              f"{'met' if ok else 'NOT met'}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
