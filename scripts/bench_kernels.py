#!/usr/bin/env python3
"""Benchmark the RRSR CUDA kernels (plugins/torch) on the GPU: MDCN vs torchvision.ops.deform_conv2d vs a
same-shape cuDNN conv2d, and PatchMatch vs the PyTorch reference matching. Prints tables, writes JSON.

    PYTHONPATH=. python3 scripts/bench_kernels.py --json build/bench.json [--budget-s 200] [--cap-s 20]
        [--only mdcn|patch_match] [--tiles] [--profile] [--offsets random|smooth|both]

Times (MDCN): GPU time per call -- R calls captured in one CUDA graph, median of the CUDA-event timings of its
replays divided by R -- so PyTorch's per-call host overhead (tens of microseconds, more than a small kernel takes;
an engine or a graph does not pay it) is out of every column alike; the "eager" figures beside them are single calls
on an idle GPU, host overhead included. PatchMatch: median of single-call CUDA-event timings after warm-up (those
calls take milliseconds). Memory: torch.cuda.max_memory_allocated() minus the memory allocated before the call
(includes the output). Any single measurement predicted (from one timed call or the
previous size's time scaled by work) to exceed --cap-s is skipped, and so is everything after --budget-s, so the
script ends in bounded time. TF32 is off except in the column that says so: FP32 numbers are true FP32 (as our FP32 kernels are).
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

# RRSR's stages, then x16 area, and 64@512^2 (the cuDNN comparison point)
MDCN_SHAPES = [(256, 40), (128, 80), (64, 160), (256, 160), (128, 320), (64, 640), (64, 512)]
ALGO = {"auto": 0, "simt": 1, "tensor_core": 2, "fp32_diagonal": 3, "tensor_core_wide": 4}  # the extension's `algo` (rrsr::Algo)
# vec8 tensor-core kernel tiles (bm, bn, splits; 0 = the kernel's choice) for --tiles; a 4th field 1 = its
# register-B variant (mdcn_vec8_regb.cuh), a 5th field 3 = its three-stage K pipeline (pipelined_chunks), a 6th
# field 2 = its 256x64 tile capped for two blocks per SM
REGB_TILES = [(64, 128, 1, 1), (64, 256, 1, 1)]
STAGES3 = (0, 0, 0, 0, 3)  # the launcher's tile and splits, three stages
TWO_BLOCKS = (256, 64, 0, 0, 2, 2)  # the 256-channel stages' tile at two blocks per SM, the launcher's splits
TILES = [(64, 64, 1), (64, 128, 1), (128, 64, 1), (128, 128, 1), (256, 64, 1), (64, 64, 2), (128, 64, 2),
         (128, 64, 4), (256, 64, 4), (0, 0, 0), *REGB_TILES, (64, 128, 2, 1), (64, 128, 4, 1),
         (64, 64, 1, 0, 3), (64, 128, 1, 0, 3), (128, 64, 1, 0, 3), (128, 128, 1, 0, 3), (256, 64, 1, 0, 3),
         (64, 64, 2, 0, 3), (128, 64, 2, 0, 3), (128, 64, 4, 0, 3), (256, 64, 4, 0, 3),
         (256, 64, 1, 0, 2, 2), (256, 64, 2, 0, 2, 2), (256, 64, 4, 0, 2, 2)]
SLAB_GEMM_TILES = [(64, 64, 0), (64, 128, 0), (128, 64, 0), (128, 128, 0), (256, 64, 0)]  # --tiles, column slab
SLAB_BAND_MIB = (2, 4, 8, 16)  # --tiles: column-slab bands narrower than its default 32 MiB
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


def gpu_time(fn, budget, repeats=15, target_s=4e-3):
    """-> dict(ms=GPU ms per call from a CUDA graph of R calls, eager_ms, peak_mb, reps) or dict(skipped=reason)."""
    try:
        eager = bench(fn, budget, warmup=2, iters=10)
    except RuntimeError as e:  # e.g. a tile the launcher refuses for this shape
        return {"skipped": str(e).split(": ")[-1][:80]}
    if "ms" not in eager:
        return eager
    reps = int(max(1, min(100, target_s / max(eager["ms"] / 1e3, 1e-6))))
    if budget.left() <= 0:
        return {**eager, "eager_ms": eager["ms"], "graph": "time budget spent"}
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            fn()
        torch.cuda.current_stream().wait_stream(side)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for _ in range(reps):
                fn()
        g.replay()
        torch.cuda.synchronize()
        times = [_once(g.replay) for _ in range(repeats)]
    except Exception as e:  # noqa: BLE001 - a callable that cannot be captured keeps its eager time, marked
        return {**eager, "eager_ms": eager["ms"], "graph": f"not capturable: {type(e).__name__}"}
    finally:
        torch.cuda.synchronize()
    return {"ms": statistics.median(times) * 1e3 / reps, "eager_ms": eager["ms"], "peak_mb": eager["peak_mb"],
            "reps": reps}


def kernel_breakdown(fn, calls=10):
    """GPU time per call of each CUDA kernel fn launches (torch.profiler), as [(name, us)], longest first."""
    from torch.profiler import ProfilerActivity, profile
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    out = []
    for e in prof.key_averages():
        total = getattr(e, "self_device_time_total", None)
        if total is None:
            total = getattr(e, "self_cuda_time_total", 0)
        if total > 0:
            out.append((e.key, total / calls))
    return sorted(out, key=lambda kv: -kv[1])


def fmt(r):
    if r is None:
        return "-"
    if "skipped" in r:
        return "skip"
    return f"{r['ms']:9.3f} ms {r['peak_mb']:7.1f} MiB"


def _offsets(s, g, kind):
    """MDCN offsets (1, 2*og*9, s, s): "random" = N(0, 2^2) px per pixel, group and tap (the published tables; a
    warp's gathers scatter over many cache lines); "smooth" = a coherent flow per offset group (bilinearly
    upsampled from a 1/16 grid, +-6 px) shared by its taps, plus N(0, 0.3^2) px -- closer to RRSR's correspondence-
    driven offsets."""
    if kind == "random":
        return torch.randn(1, 2 * OFFSET_GROUP * 9, s, s, device="cuda", generator=g) * 2.0
    coarse = torch.randn(1, 2 * OFFSET_GROUP, s // 16 + 2, s // 16 + 2, device="cuda", generator=g) * 6.0
    flow = F.interpolate(coarse, size=(s, s), mode="bilinear", align_corners=False)       # (1, og*2, s, s)
    flow = flow.view(1, OFFSET_GROUP, 1, 2, s, s).expand(1, OFFSET_GROUP, 9, 2, s, s)     # same for every tap
    noise = torch.randn(1, OFFSET_GROUP, 9, 2, s, s, device="cuda", generator=g) * 0.3
    return (flow + noise).reshape(1, 2 * OFFSET_GROUP * 9, s, s).contiguous()


def bench_mdcn(ext, budget, iters, tiles=False, profile_kernels=False, offsets="random"):
    try:
        from torchvision.ops import deform_conv2d
    except Exception as e:  # noqa: BLE001
        print(f"torchvision unavailable ({e}); its columns are skipped")
        deform_conv2d = None
    rows = []
    print(f"\n== MDCN 3x3, pad 1, offset_group 8, with mask, N=1 (C_in = C_out), {offsets} offsets; FP16 = FP16 "
          "features/weights with FP32 offsets/mask (our policy) ==")
    print("   ours = kAuto (FP32: SIMT kernel; FP16: tensor-core kernel); ours simt = the FP32-FMA kernel on FP16 data;")
    print("   torchvision and cuDNN get offsets/mask in the feature dtype; errors: max abs vs the FP32 reference on "
          "the same FP16-rounded data")
    print(f"{'shape':>12} {'dtype':>5} | {'ours':>22} | {'ours simt':>22} | {'torchvision':>22} | "
          f"{'cudnn conv2d':>22} | {'tv/ours':>7} {'ours/conv':>9} | {'err ours':>9} {'err simt':>9} {'err tv':>9}")
    for c, s in MDCN_SHAPES:
        g = torch.Generator(device="cuda").manual_seed(0)
        x = torch.randn(1, c, s, s, device="cuda", generator=g)
        w = torch.randn(c, c, 3, 3, device="cuda", generator=g) / math.sqrt(9 * c)
        b = torch.randn(c, device="cuda", generator=g)
        off = _offsets(s, g, offsets)
        m = torch.rand(1, OFFSET_GROUP * 9, s, s, device="cuda", generator=g)
        a = ([1, 1], [1, 1, 1, 1], [1, 1], 1, OFFSET_GROUP)
        k_pad = -(-9 * c // 32) * 32  # K' padded to whole chunks: a pixel's column-slab row, in halves
        for dt in (torch.float32, torch.float16):
            xs, ws, bs = (t.to(dt) for t in (x, w, b))
            os_, ms = off, m                          # ours: FP32 offsets/mask (the FP16 policy)
            otv, mtv = off.to(dt), m.to(dt)           # torchvision: offsets in the feature dtype
            row = {"c": c, "hw": s, "dtype": str(dt).split(".")[-1], "offsets": offsets}
            row["ours"] = gpu_time(lambda: ext.mdcn_forward(xs, ws, os_, bs, ms, *a), budget)
            row["ours_simt"] = (gpu_time(lambda: ext.mdcn_forward(xs, ws, os_, bs, ms, *a, algo=ALGO["simt"]), budget)
                                if dt == torch.float16 else None)
            row["torchvision"] = (gpu_time(lambda: deform_conv2d(xs, otv, ws, bs, padding=(1, 1), mask=mtv), budget)
                                  if deform_conv2d else None)
            row["conv2d"] = gpu_time(lambda: F.conv2d(xs, ws, bs, padding=1), budget)
            if dt == torch.float16 and c <= 64:  # the register-B variant (a TensorRT tactic; not the launcher's)
                row["ours_regb"] = {"x".join(map(str, t[:2])): gpu_time(
                    lambda: ext.mdcn_forward(xs, ws, os_, bs, ms, *a, tile=list(t)), budget) for t in REGB_TILES}
            if dt == torch.float16:  # the three-stage pipeline on the launcher's tile (a TensorRT tactic)
                row["ours_stages3"] = gpu_time(lambda: ext.mdcn_forward(xs, ws, os_, bs, ms, *a, tile=list(STAGES3)),
                                               budget)
                # the column slab (the launcher's tile; in bands past 32 MiB of columns; its workspace comes with
                # the variant), and a cuBLAS GEMM of the same K x pixels alone: what any im2col + GEMM pays for
                # the products, without sampling
                row["ours_slab"] = gpu_time(lambda: ext.mdcn_forward(xs, ws, os_, bs, ms, *a, variant=4), budget)
                w2d, cols = ws.reshape(c, -1), torch.randn(9 * c, s * s, device="cuda", dtype=dt, generator=g)
                row["gemm_cublas"] = gpu_time(lambda: torch.mm(w2d, cols), budget)
                del cols
                if c == 256:
                    row["ours_two_blocks"] = gpu_time(
                        lambda: ext.mdcn_forward(xs, ws, os_, bs, ms, *a, tile=list(TWO_BLOCKS)), budget)
            if tiles and dt == torch.float16:
                row["tiles"] = {}
                for tile in TILES:
                    r = gpu_time(lambda: ext.mdcn_forward(xs, ws, os_, bs, ms, *a, tile=list(tile)), budget)
                    if "workspace too small" in r.get("skipped", ""):
                        continue  # a split count this shape is too large to be offered
                    row["tiles"]["x".join(map(str, tile))] = r.get("ms", r.get("skipped"))
                for tile in SLAB_GEMM_TILES:  # the column slab's GEMM on each tile (the launcher's splits)
                    r = gpu_time(lambda: ext.mdcn_forward(xs, ws, os_, bs, ms, *a, tile=list(tile), variant=4), budget)
                    row["tiles"]["slab" + "x".join(map(str, tile[:2]))] = r.get("ms", r.get("skipped"))
                # the column slab in narrower bands than its default 32 MiB (L2 residency between im2col and GEMM)
                for mib in SLAB_BAND_MIB:
                    band = (mib << 20) // (k_pad * 2) // 256 * 256
                    if 256 <= band < s * s:
                        r = gpu_time(lambda: ext.mdcn_forward(xs, ws, os_, bs, ms, *a, tile=[0, 0, 0, 0, 0, 0, band],
                                                              variant=4), budget)
                        row["tiles"][f"slab{mib}MiB"] = r.get("ms", r.get("skipped"))
            if dt == torch.float16 and budget.left() > 0:
                with torch.no_grad():
                    want = mdcn_reference(xs.float(), ws.float(), os_.float(), bs.float(), ms.float(), *a)
                    row["fp16_err_ours"] = (ext.mdcn_forward(xs, ws, os_, bs, ms, *a).float() - want).abs().max().item()
                    row["fp16_err_simt"] = (ext.mdcn_forward(xs, ws, os_, bs, ms, *a, algo=ALGO["simt"]).float()
                                            - want).abs().max().item()
                    row["fp16_err_stages3"] = (ext.mdcn_forward(xs, ws, os_, bs, ms, *a, tile=list(STAGES3)).float()
                                               - want).abs().max().item()
                    row["fp16_err_slab"] = (ext.mdcn_forward(xs, ws, os_, bs, ms, *a, variant=4).float()
                                            - want).abs().max().item()
                    if "ours_regb" in row:
                        row["fp16_err_regb"] = max(
                            (ext.mdcn_forward(xs, ws, os_, bs, ms, *a, tile=list(t)).float() - want).abs().max().item()
                            for t in REGB_TILES)
                    if deform_conv2d:
                        tv = deform_conv2d(xs, otv, ws, bs, padding=(1, 1), mask=mtv)
                        row["fp16_err_torchvision"] = (tv.float() - want).abs().max().item()
                    row["ref_absmax"] = want.abs().max().item()
                del want
            rows.append(row)
            ratio = lambda r1, r2: (f"{row[r1]['ms'] / row[r2]['ms']:.2f}"  # noqa: E731
                                    if row.get(r1) and row.get(r2) and "ms" in row[r1] and "ms" in row[r2] else "-")
            e = lambda k: f"{row[k]:.3g}" if k in row else ""  # noqa: E731
            print(f"{c:>5}@{s:>4}^2 {'fp' + row['dtype'][5:]:>5} | {fmt(row['ours']):>22} | {fmt(row['ours_simt']):>22} | "
                  f"{fmt(row['torchvision']):>22} | {fmt(row['conv2d']):>22} | {ratio('torchvision', 'ours'):>7} "
                  f"{ratio('ours', 'conv2d'):>9} | {e('fp16_err_ours'):>9} {e('fp16_err_simt'):>9} "
                  f"{e('fp16_err_torchvision'):>9}", flush=True)
            if "ms" in row["ours"] and "eager_ms" in row["ours"]:
                eg = lambda k: (f"{row[k]['eager_ms']:.3f}" if row.get(k) and "eager_ms" in row[k] else "-")  # noqa: E731
                print(f"{'':>18} eager single calls (ms): ours {eg('ours')}, simt {eg('ours_simt')}, torchvision "
                      f"{eg('torchvision')}, cudnn {eg('conv2d')}")

            def against(r):  # "<time> (ours / it <ratio>)": > 1 where the variant beats the launcher's choice
                vs = f" (ours / it {row['ours']['ms'] / r['ms']:.2f})" if "ms" in r and "ms" in row["ours"] else ""
                return fmt(r) + vs

            err = lambda k: f", err {row[k]:.3g}" if k in row else ""  # noqa: E731
            if row.get("ours_regb"):
                print(f"{'':>18} register-B variant: "
                      + ", ".join(f"{k} {against(v)}" for k, v in row["ours_regb"].items()) + err("fp16_err_regb"))
            if row.get("ours_stages3"):
                print(f"{'':>18} three-stage pipeline: {against(row['ours_stages3'])}" + err("fp16_err_stages3"))
            if row.get("ours_slab"):
                bands = ", bands" if s * s * k_pad * 2 > 32 << 20 else ""
                print(f"{'':>18} column slab (im2col + GEMM{bands}): {against(row['ours_slab'])}" + err("fp16_err_slab"))
            if row.get("gemm_cublas"):
                print(f"{'':>18} cuBLAS GEMM alone (C_out x 9C by 9C x pixels, no sampling): {fmt(row['gemm_cublas'])}")
            if row.get("ours_two_blocks"):
                print(f"{'':>18} 256x64 at two blocks per SM (the launcher's own where it picks 256x64): "
                      f"{against(row['ours_two_blocks'])}")
            if profile_kernels and dt == torch.float16:
                try:
                    row["kernels_us"] = kernel_breakdown(lambda: ext.mdcn_forward(xs, ws, os_, bs, ms, *a))
                    print(f"{'':>18} ours per kernel (us): " + ", ".join(
                        f"{k.split('(')[0][-40:]} {v:.1f}" for k, v in row["kernels_us"]))
                    row["kernels_us_slab"] = kernel_breakdown(
                        lambda: ext.mdcn_forward(xs, ws, os_, bs, ms, *a, variant=4))
                    print(f"{'':>18} column slab per kernel (us): " + ", ".join(
                        f"{k.split('(')[0][-40:]} {v:.1f}" for k, v in row["kernels_us_slab"]))
                except Exception as ex:  # noqa: BLE001 - a profiler problem must not end the benchmark
                    print(f"{'':>18} (profiler unavailable: {type(ex).__name__}: {str(ex)[:80]})")
            if row.get("tiles"):
                print(f"{'':>18} tiles (ms): " + ", ".join(
                    f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row["tiles"].items()))
    return rows


def _ccn_like(h, w, c=256, seed=0):
    # smooth, correlated features (as a CNN gives), and a reference that is a shifted, noisy copy
    g = torch.Generator(device="cuda").manual_seed(seed)
    f = F.interpolate(torch.randn(1, c, h // 4 + 1, w // 4 + 1, device="cuda", generator=g), size=(h, w),
                      mode="bilinear", align_corners=False)
    f = f + 0.3 * torch.randn(1, c, h, w, device="cuda", generator=g)
    ref = torch.roll(f, shifts=(7, -11), dims=(2, 3)) + 0.1 * torch.randn(1, c, h, w, device="cuda", generator=g)
    return f.contiguous(), ref.contiguous()


def _gap_stats(fi, fr, idx, idx_ref, k=3, chunk=8192):
    """Float64 score gap |score(idx) - score(idx_ref)| at the positions where the indices differ (chunked)."""
    diff = (idx != idx_ref).reshape(-1).nonzero().squeeze(1)
    if diff.numel() == 0:
        return 0, 0.0
    a = F.normalize(fi.double(), dim=1)[0]
    r = F.normalize(fr.double(), dim=1)[0]
    c, h, w = a.shape
    wp, wrp = w - k + 1, r.shape[2] - k + 1
    worst = 0.0
    for s in range(0, diff.numel(), chunk):
        q = diff[s:s + chunk]
        def patches(f, pos, wpp):
            py, px = pos // wpp, pos % wpp
            dy, dx = torch.meshgrid(torch.arange(k, device=f.device), torch.arange(k, device=f.device), indexing="ij")
            yy = (py[:, None] + dy.reshape(1, -1))
            xx = (px[:, None] + dx.reshape(1, -1))
            return f[:, yy, xx].permute(1, 0, 2).reshape(pos.numel(), -1)  # (P, C*k*k)
        pin = patches(a, q, wp)
        s1 = idx.reshape(-1)[q].long()
        s2 = idx_ref.reshape(-1)[q].long()
        p1, p2 = patches(r, s1, wrp), patches(r, s2, wrp)
        v1 = (pin * p1).sum(1) / (p1.norm(dim=1) + 1e-5)
        v2 = (pin * p2).sum(1) / (p2.norm(dim=1) + 1e-5)
        worst = max(worst, (v1 - v2).abs().max().item())
    return int(diff.numel()), worst


def bench_patch_match(ext, budget, iters):
    rows = []
    print("\n== PatchMatch, k=3, 256 channels at the LR size, F_ref same size as F_in ==")
    print("   ours simt: exact FP32; ours diag: FP32 FMAs over per-pixel correlation tiles summed along diagonals "
          "(kAuto for FP32 inputs); ours tc: tensor cores on FP16-rounded normalised features (kAuto "
          "for FP16 inputs: v2, 64 x 64 tiles); ours tc3: the same with 64 x 128 tiles from mma.sync fragments (v3, "
          "Algo::kTensorCoreWide); reference: the model's chunked-conv matching in FP32, TF32 off / on (PyTorch's "
          "cuDNN default). TFLOP/s: 2 * (h*w)^2 * 256 per call, the per-pixel correlation work (8.6e12 at 270x480)")
    print(f"{'LR size':>9} | {'ours simt fp32':>22} | {'ours diag fp32':>22} | {'ours tc fp16':>22} | "
          f"{'ours tc3 fp16':>22} | {'reference fp32':>22} | {'reference tf32':>22} | {'ref/tc':>6} | "
          "tc idx mismatches (worst gap)")
    prev = {}
    for h, w in PM_SIZES:
        work = float((h - 2) * (w - 2)) ** 2
        fi, fr = _ccn_like(h, w)
        fi16, fr16 = fi.half(), fr.half()
        row = {"h": h, "w": w}

        def pred(key):  # scale the previous size's time by the work ratio
            return None if key not in prev else prev[key][0] * work / prev[key][1]

        def reference_tf32():
            torch.backends.cudnn.allow_tf32 = True
            try:
                return patch_match_reference(fi, fr, 3)
            finally:
                torch.backends.cudnn.allow_tf32 = False

        for key, fn in (("ours_simt_fp32", lambda: ext.patch_match_forward(fi, fr, 3, algo=ALGO["simt"])),
                        ("ours_diag_fp32", lambda: ext.patch_match_forward(fi, fr, 3, algo=ALGO["fp32_diagonal"])),
                        ("ours_tc_fp16", lambda: ext.patch_match_forward(fi16, fr16, 3, algo=ALGO["tensor_core"])),
                        ("ours_tc3_fp16",
                         lambda: ext.patch_match_forward(fi16, fr16, 3, algo=ALGO["tensor_core_wide"])),
                        ("reference_fp32", lambda: patch_match_reference(fi, fr, 3)),
                        ("reference_tf32", reference_tf32)):
            row[key] = bench(fn, budget, warmup=1, iters=min(iters, 5), predicted_s=pred(key))
            if "ms" in row[key]:
                prev[key] = (row[key]["ms"] / 1e3, work)
        i_ref = None
        if "ms" in row["reference_fp32"]:
            i_ref, s_ref = patch_match_reference(fi, fr, 3)
        if i_ref is not None and "ms" in row["ours_simt_fp32"]:
            i1, s1 = ext.patch_match_forward(fi, fr, 3, algo=ALGO["simt"])
            row["simt_index_mismatches"], row["simt_worst_gap"] = _gap_stats(fi, fr, i1, i_ref)
            row["simt_score_max_abs_diff"] = (s1 - s_ref).abs().max().item()
        if i_ref is not None and "ms" in row["ours_diag_fp32"]:
            i3, s3 = ext.patch_match_forward(fi, fr, 3, algo=ALGO["fp32_diagonal"])
            row["diag_index_mismatches"], row["diag_worst_gap"] = _gap_stats(fi, fr, i3, i_ref)
            row["diag_score_max_abs_diff"] = (s3 - s_ref).abs().max().item()
        if i_ref is not None and "ms" in row["ours_tc_fp16"]:
            i_ref16, _ = patch_match_reference(fi16, fr16, 3)  # same FP16-rounded inputs, FP32 math
            i2, _ = ext.patch_match_forward(fi16, fr16, 3, algo=ALGO["tensor_core"])
            row["tc_index_mismatches"], row["tc_worst_gap"] = _gap_stats(fi16, fr16, i2, i_ref16)
            row["patches"] = i2.numel()
            if "ms" in row["ours_tc3_fp16"]:
                i4, _ = ext.patch_match_forward(fi16, fr16, 3, algo=ALGO["tensor_core_wide"])
                row["tc3_indices_differ_from_tc"] = int((i4 != i2).sum())
        flop = 2.0 * (h * w) ** 2 * 256
        for key in ("ours_tc_fp16", "ours_tc3_fp16", "ours_diag_fp32"):
            if "ms" in row[key]:
                row[key]["tflops"] = flop / (row[key]["ms"] * 1e-3) / 1e12
        rows.append(row)
        ratio = (f"{row['reference_fp32']['ms'] / row['ours_tc_fp16']['ms']:.2f}"
                 if "ms" in row["reference_fp32"] and "ms" in row["ours_tc_fp16"] else "-")
        mism = (f"{row['tc_index_mismatches']} of {row['patches']} ({row['tc_worst_gap']:.2g})"
                if "tc_index_mismatches" in row else "-")
        print(f"{h:>4}x{w:<4} | {fmt(row['ours_simt_fp32']):>22} | {fmt(row['ours_diag_fp32']):>22} | "
              f"{fmt(row['ours_tc_fp16']):>22} | {fmt(row['ours_tc3_fp16']):>22} | "
              f"{fmt(row['reference_fp32']):>22} | {fmt(row['reference_tf32']):>22} | {ratio:>6} | {mism}", flush=True)
        eff = ", ".join(f"{k[5:]} {row[k]['tflops']:.0f} TFLOP/s" for k in ("ours_tc_fp16", "ours_tc3_fp16",
                                                                              "ours_diag_fp32") if "tflops" in row[k])
        if eff:
            print(f"{'':>9}   effective: {eff}" + (f"; tc3 indices differing from tc: "
                                                     f"{row['tc3_indices_differ_from_tc']}"
                                                     if "tc3_indices_differ_from_tc" in row else ""))
        for kind in ("simt", "diag"):
            if f"{kind}_index_mismatches" in row:
                print(f"{'':>9}   {kind} vs reference: {row[f'{kind}_index_mismatches']} index mismatches (worst gap "
                      f"{row[f'{kind}_worst_gap']:.2g}), score max abs diff {row[f'{kind}_score_max_abs_diff']:.3g}")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, required=True, help="where to write the results")
    ap.add_argument("--budget-s", type=float, default=200.0, help="stop measuring after this many seconds")
    ap.add_argument("--cap-s", type=float, default=20.0, help="skip a measurement predicted to exceed this")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--only", choices=["mdcn", "patch_match"], help="run one of the two benchmarks")
    ap.add_argument("--tiles", action="store_true", help="also time each tile of the vec8 MDCN kernel (FP16)")
    ap.add_argument("--profile", action="store_true", help="per-kernel GPU times of our FP16 MDCN (torch.profiler)")
    ap.add_argument("--offsets", choices=["random", "smooth", "both"], default="random",
                    help="MDCN offsets: random per pixel/group/tap (default), a smooth flow per group (closer to "
                         "RRSR's), or both tables one after the other")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_kernels.py: CUDA is not available")
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True  # cuDNN at its best algorithm for the conv2d column
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
        if args.only != "patch_match":
            result["mdcn"] = []
            for kind in (["random", "smooth"] if args.offsets == "both" else [args.offsets]):
                result["mdcn"] += bench_mdcn(ext, budget, args.iters, tiles=args.tiles,
                                             profile_kernels=args.profile, offsets=kind)
        if args.only != "mdcn":
            result["patch_match"] = bench_patch_match(ext, budget, args.iters)
    result["elapsed_s"] = time.monotonic() - budget.t0
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {args.json} ({result['elapsed_s']:.1f} s)")


if __name__ == "__main__":
    main()
