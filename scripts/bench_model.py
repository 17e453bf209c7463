#!/usr/bin/env python3
"""Whole-model RRSR, stage by stage: time, peak memory and accuracy of four ways to run it, in one process.

    PYTHONPATH=. python3 scripts/bench_model.py --json build/bench_model.json [--sizes 40x40,83x125,270x480]

Paths (``--paths``, any of a,b,c,d):
  a  "PyTorch as the authors run it": eager FP32 with PyTorch's default TF32 convolutions, MDCN by
     torchvision.ops.deform_conv2d where torchvision imports (else our reference op, and the table says so), the
     authors' chunked matching, RAS as PyTorch ops;
  b  torch.compile(mode="reduce-overhead") of (a), stage by stage (CUDA graphs by torch's cudagraph trees);
  c  today's FP16 policy with the project's CUDA kernels (plugins/torch), eager;
  d  the fast path (runtime.fast_path, what ``runtime.infer --compile`` runs): (c) compiled per stage, one CUDA
     graph for the whole forward.
Stages: CCN (both branches), matching (PatchMatch + index -> pre-offsets), VGG19 (reference features), trunk
(net_g). On CUDA, times are medians of CUDA-event timings after warm-up; stage times of (d) come from a CUDA graph
of each compiled stage alone, its total from the whole-forward graph. Compile and capture times are printed apart.
Peak = torch.cuda.max_memory_allocated from the path's start to the end of its timed whole-forward runs, weights and
graph pools included. Each path and size compiles afresh (torch.compiler.reset between them), so compile times are
those of a static-shape first call. Accuracy: max abs and
PSNR (peak 1, outputs clamped to [0, 1]) against the FP32 reference (eager, reference ops, TF32 off). Inputs are
smooth synthetic images with a reference that is a shifted, mirrored copy (real matches, few ties); weights are
the bundled demo checkpoint (the network's shapes and cost are those of any RRSR checkpoint).

``--device cpu`` runs the same code with wall-clock timers (a smoke test of the script; CPU figures are not the
point).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rrsr_model  # noqa: E402
from rrsr_model.network import RRSR  # noqa: E402
from rrsr_model.ops import mdcn  # noqa: E402
from rrsr_model.precision import to_fp16  # noqa: E402
from runtime.fast_path import FastRRSR, strict_fp32_math  # noqa: E402

DEMO_CKPT = ROOT / "rrsr_model" / "assets" / "demo_rrsr.pth"
STAGES = RRSR.STAGES
PATHS = {
    "a": "eager FP32 (TF32 convs), torchvision DCN",
    "b": "torch.compile reduce-overhead of (a)",
    "c": "FP16 policy + our CUDA kernels, eager",
    "d": "fast path: (c) compiled + CUDA graph",
}
# issue targets (H200): total per LR size, and at 1080p the time outside matching
TARGET_TOTAL_MS = {(40, 40): 4.0, (83, 125): 10.0, (270, 480): 120.0}
TARGET_1080P_NON_MATCHING_MS = 90.0
TARGET_PEAK_MIB = 4096
FP16_MIN_PSNR = 45.0


def synthetic_inputs(h, w, device, seed=0):
    g = torch.Generator(device=device).manual_seed(seed)
    lr = F.interpolate(torch.rand(1, 3, h // 8 + 1, w // 8 + 1, device=device, generator=g), size=(h, w),
                       mode="bicubic", align_corners=False).clamp(0, 1)
    lr = (lr + 0.05 * torch.rand(1, 3, h, w, device=device, generator=g)).clamp(0, 1)
    lr_up = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    ref = torch.roll(lr_up, shifts=(12, -20), dims=(2, 3)).flip(3).contiguous()
    return lr, lr_up, ref


def psnr(a, b):
    mse = (a.float().clamp(0, 1) - b.float().clamp(0, 1)).pow(2).mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


# ---- timing: CUDA events on the GPU, wall clock on the CPU ----------------------------------------------------

class Clock:
    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def mark(self):
        if self.cuda:
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def ms(self, start, end) -> float:
        return start.elapsed_time(end) if self.cuda else (end - start) * 1e3

    def peak_mib(self) -> Optional[float]:
        """Peak allocated since the path started (weights, graph pools included); None on the CPU."""
        return torch.cuda.max_memory_allocated() / 2**20 if self.cuda else None

    def time(self, fn: Callable[[], object], iters: int) -> list[float]:
        out = []
        for _ in range(iters):
            s = self.mark()
            fn()
            e = self.mark()
            self.sync()
            out.append(self.ms(s, e))
        return out


def timed_stages(stages: dict, clock: Clock, record: dict) -> dict:
    """The stage callables, each recording its (start, end) marks into ``record[name]``, and the arguments of its
    first call into ``record["args"][name]`` (only the first: at 1080p one call's features are GBs)."""
    def wrap(name, fn):
        def call(*args):
            s = clock.mark()
            out = fn(*args)
            record.setdefault(name, []).append((s, clock.mark()))
            record.setdefault("args", {}).setdefault(name, args)
            return out
        return call
    return {n: wrap(n, f) for n, f in stages.items()}


def graph_replay_ms(fn: Callable[[], object], clock: Clock, iters: int) -> list[float]:
    """``fn`` captured alone in a CUDA graph (after two warm-up calls on a side stream), then replays timed."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn()
        fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        fn()
    times = clock.time(graph.replay, iters)
    del graph
    return times


# ---- the kernels each path routes the custom ops to -------------------------------------------------------------

def torchvision_mdcn():
    """An MDCN kernel for rrsr_model.ops.mdcn.use_kernel that calls torchvision.ops.deform_conv2d (what the
    authors' code runs after mmcv), or None with the reason when torchvision does not import."""
    try:
        from torchvision.ops import deform_conv2d
    except Exception as e:  # noqa: BLE001 - any import failure: the table says which MDCN ran
        return None, f"torchvision does not import ({type(e).__name__}: {str(e)[:120]}): our reference MDCN op"

    def kernel(x, weight, offset, bias, mask, strides, pads, dilations, group, offset_group):
        if pads[0] != pads[2] or pads[1] != pads[3]:
            return mdcn.mdcn_reference(x, weight, offset, bias, mask, strides, pads, dilations, group, offset_group)
        dt = x.dtype      # torchvision takes one dtype for everything
        return deform_conv2d(x, offset.to(dt), weight, bias, stride=tuple(strides), padding=(pads[0], pads[1]),
                             dilation=tuple(dilations), mask=None if mask is None else mask.to(dt))
    return kernel, "torchvision.ops.deform_conv2d"


def kernels_context(kind: str, device: str) -> Callable[[], contextlib.AbstractContextManager]:
    """kind: reference | compiled (plugins/torch) | torchvision (MDCN only; the rest reference)."""
    if not device.startswith("cuda") or kind == "reference":
        if device.startswith("cuda"):
            import plugins.torch as pt
            return lambda: pt.kernels(False)
        return contextlib.nullcontext
    if kind == "compiled":
        import plugins.torch as pt
        return lambda: pt.kernels(True)
    tv, _ = torchvision_mdcn()

    @contextlib.contextmanager
    def ctx():
        import plugins.torch as pt
        with pt.kernels(False), mdcn.using_kernel("cuda", tv):
            yield
    return ctx


# ---- one path at one size ----------------------------------------------------------------------------------------

def median(xs):
    return statistics.median(xs) if xs else None


def stage_medians(record: dict, clock: Clock, skip: int) -> dict:
    return {n: median([clock.ms(s, e) for s, e in record.get(n, [])[skip:]]) for n in STAGES}


def run_eager(model, inputs, clock, iters, ctx) -> dict:
    with ctx():
        model(*inputs)                                     # warm-up (lazy inits, cuDNN heuristics)
        clock.sync()
        total = clock.time(lambda: model(*inputs), iters)
        peak = clock.peak_mib()
        record: dict = {}
        stages = timed_stages(model.stage_modules(), clock, record)
        for _ in range(iters):
            out = model.run_stages(stages, *inputs)
            clock.sync()
    return {"out": out, "total_ms": median(total), "stages_ms": stage_medians(record, clock, 0), "peak_mib": peak}


def run_reduce_overhead(model, inputs, clock, iters, ctx) -> dict:
    compiled = {n: torch.compile(f, mode="reduce-overhead") for n, f in model.stage_modules().items()}

    def step(stages):
        torch.compiler.cudagraph_mark_step_begin()
        return model.run_stages(stages, *inputs)
    with ctx():
        t = time.perf_counter()
        step(compiled)
        clock.sync()
        compile_s = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(2):                                 # cudagraph trees record on the following calls
            step(compiled)
        clock.sync()
        capture_s = time.perf_counter() - t
        total = clock.time(lambda: step(compiled), iters)
        peak = clock.peak_mib()
        record: dict = {}
        stages = timed_stages(compiled, clock, record)
        for _ in range(iters):
            out = step(stages).clone()
            clock.sync()
    return {"out": out, "total_ms": median(total), "stages_ms": stage_medians(record, clock, 0),
            "compile_s": compile_s, "capture_s": capture_s, "peak_mib": peak}


def run_fast(model, inputs, clock, iters, ctx, device) -> dict:
    fast = FastRRSR(model, device, kernels_context=ctx, log=lambda m: print(f"    {m}", flush=True))
    with torch.inference_mode(), ctx():
        t = time.perf_counter()
        fast.forward(*inputs)                              # compiles (no graph yet)
        clock.sync()
        compile_s = time.perf_counter() - t
    t = time.perf_counter()
    out = fast(*inputs)                                    # captures the whole-forward graph
    clock.sync()
    capture_s = time.perf_counter() - t
    total = clock.time(lambda: fast(*inputs), iters)
    peak = clock.peak_mib()
    record: dict = {}
    with torch.inference_mode(), ctx():
        fast.model.run_stages(timed_stages(fast.stages, clock, record), *inputs)
        clock.sync()
        if clock.cuda:                                     # each compiled stage in a graph of its own
            args = record["args"]
            stages_ms = {n: median(graph_replay_ms(lambda n=n: fast.stages[n](*args[n]), clock, iters))
                         for n in STAGES}
        else:
            stages_ms = stage_medians(record, clock, 0)
    return {"out": out, "total_ms": median(total), "stages_ms": stages_ms, "compile_s": compile_s,
            "capture_s": capture_s, "fast_path": fast.describe(), "peak_mib": peak}


def load(ckpt, device, fp16):
    model = rrsr_model.load_model(ckpt, device=device).eval()
    return to_fp16(model) if fp16 else model.float()


def bench_path(key, ckpt, inputs, device, iters, reference) -> dict:
    clock = Clock(device)
    fp16 = key in ("c", "d")
    model = load(ckpt, device, fp16)
    dtype = next(model.net_g.parameters()).dtype
    x = tuple(t.to(dtype) for t in inputs) + (None,)
    ctx = kernels_context("compiled" if fp16 else "torchvision", device)
    if clock.cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    weights = torch.cuda.memory_allocated() if clock.cuda else 0
    try:
        with torch.inference_mode() if key != "d" else contextlib.nullcontext():
            if key in ("a", "c"):
                r = run_eager(model, x, clock, iters, ctx)
            elif key == "b":
                r = run_reduce_overhead(model, x, clock, iters, ctx)
            else:
                r = run_fast(model, x, clock, iters, ctx, device)
    finally:
        torch.compiler.reset()                             # each path compiles its own code; none is reused
    out = r.pop("out").float()
    r["max_abs"] = (out - reference).abs().max().item()
    r["psnr_db"] = psnr(out, reference)
    if clock.cuda:
        r["weights_mib"] = weights / 2**20
    else:
        r.pop("peak_mib")
    del model, out
    return r


def reference_output(ckpt, inputs, device) -> tuple[torch.Tensor, float]:
    model = load(ckpt, device, fp16=False)
    clock = Clock(device)
    with torch.inference_mode(), strict_fp32_math(), kernels_context("reference", device)():
        t = time.perf_counter()
        out = model(*inputs)
        clock.sync()
    return out.float(), time.perf_counter() - t


# ---- report --------------------------------------------------------------------------------------------------

def fmt_ms(v: Optional[float]) -> str:
    return "-" if v is None else (f"{v:.2f}" if v < 100 else f"{v:.0f}")


def format_size_table(size_result: dict) -> str:
    h, w = size_result["lr"]
    lines = [f"LR {h}x{w} -> SR {4 * h}x{4 * w} (reference the SR's size)",
             f"  {'path':<44}{'CCN':>8}{'match':>8}{'VGG19':>8}{'trunk':>8}{'total ms':>10}{'peak MiB':>10}"
             f"{'compile s':>10}{'capture s':>10}{'max abs':>10}{'PSNR dB':>9}"]
    for key, r in size_result["paths"].items():
        label = f"({key}) {PATHS[key]}"
        if "skipped" in r:
            lines.append(f"  {label:<44}skipped: {r['skipped']}")
            continue
        st = r["stages_ms"]
        peak = f"{r['peak_mib']:.0f}" if "peak_mib" in r else "-"
        cs = f"{r['compile_s']:.1f}" if "compile_s" in r else "-"
        ps = f"{r['capture_s']:.1f}" if "capture_s" in r else "-"
        lines.append(f"  {label:<44}" + "".join(f"{fmt_ms(st[n]):>8}" for n in STAGES)
                     + f"{fmt_ms(r['total_ms']):>10}{peak:>10}{cs:>10}{ps:>10}{r['max_abs']:>10.2e}"
                     + f"{r['psnr_db']:>9.2f}")
    return "\n".join(lines)


def verdicts(result: dict) -> list[str]:
    """The issue's targets for the fast path (d), each met / NOT met with the figures, from one run."""
    out = []
    for s in result["sizes"]:
        size, p = tuple(s["lr"]), s["paths"]
        d = p.get("d")
        if not d or "skipped" in d:
            continue
        label = f"LR {size[0]}x{size[1]}"
        for k, factor, what in (("a", 3.0, ">= 3x faster than (a)"), ("b", 1.0, "faster than (b)")):
            if k in p and "skipped" not in p[k]:
                ratio = p[k]["total_ms"] / d["total_ms"]
                out.append(f"{label}: (d) {what}: {ratio:.2f}x -> {'met' if ratio >= factor and ratio > 1.0 else 'NOT met'}")
        if size in TARGET_TOTAL_MS:
            t = TARGET_TOTAL_MS[size]
            out.append(f"{label}: (d) total {d['total_ms']:.1f} ms <= {t:g} ms -> {'met' if d['total_ms'] <= t else 'NOT met'}")
        if size == (270, 480):
            non = d["total_ms"] - (d["stages_ms"]["matching"] or 0.0)
            out.append(f"{label}: (d) everything except matching {non:.1f} ms <= {TARGET_1080P_NON_MATCHING_MS:g} ms "
                       f"-> {'met' if non <= TARGET_1080P_NON_MATCHING_MS else 'NOT met'}")
            if "peak_mib" in d:
                out.append(f"{label}: (d) peak {d['peak_mib']:.0f} MiB <= {TARGET_PEAK_MIB} MiB -> "
                           f"{'met' if d['peak_mib'] <= TARGET_PEAK_MIB else 'NOT met'}")
        out.append(f"{label}: (d) FP16 PSNR {d['psnr_db']:.2f} dB >= {FP16_MIN_PSNR:g} dB -> "
                   f"{'met' if d['psnr_db'] >= FP16_MIN_PSNR else 'NOT met'} (max abs {d['max_abs']:.2e})")
    return out


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        try:
            h, w = (int(v) for v in part.strip().lower().split("x"))
        except ValueError:
            raise SystemExit(f"bench_model.py: --sizes wants HxW[,HxW...] (e.g. 40x40,83x125), got {part!r}")
        if h < 3 or w < 3:
            raise SystemExit(f"bench_model.py: LR {h}x{w} is too small (at least 3x3)")
        sizes.append((h, w))
    return sizes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--sizes", default="40x40,83x125,270x480", help="LR sizes HxW (the SR is 4x)")
    ap.add_argument("--paths", default="a,b,c,d", help="any of a,b,c,d (see above)")
    ap.add_argument("--ckpt", type=Path, default=DEMO_CKPT)
    ap.add_argument("--iters", type=int, default=5, help="timed runs per path and size (median)")
    ap.add_argument("--budget-s", type=float, default=400.0, help="paths that would start past this are skipped")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args(argv)
    keys = [k.strip() for k in args.paths.split(",") if k.strip()]
    bad = [k for k in keys if k not in PATHS]
    if bad or not keys:
        raise SystemExit(f"bench_model.py: unknown path(s) {bad or args.paths!r}; choose from {','.join(PATHS)}")
    sizes = parse_sizes(args.sizes)
    device = args.device
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit("bench_model.py: CUDA is not available (use --device cpu for a smoke run)")
        import plugins.torch as pt
        pt.build()
    end = time.monotonic() + args.budget_s
    tv_note = torchvision_mdcn()[1] if device.startswith("cuda") else "the CPU: our reference MDCN op"
    result = {"device": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu",
              "torch": torch.__version__, "ckpt": args.ckpt.name, "mdcn_of_a_b": tv_note, "iters": args.iters,
              "sizes": []}
    print(f"== RRSR stage breakdown on {result['device']}, torch {torch.__version__}, checkpoint {args.ckpt.name}; "
          f"MDCN of (a)/(b): {tv_note} ==", flush=True)
    for h, w in sizes:
        inputs = synthetic_inputs(h, w, device)
        reference, ref_s = reference_output(args.ckpt, inputs, device)
        size_result = {"lr": [h, w], "reference_s": ref_s, "paths": {}}
        for key in keys:
            if time.monotonic() > end:
                size_result["paths"][key] = {"skipped": "time budget spent"}
                continue
            print(f"  LR {h}x{w}: ({key}) {PATHS[key]} ...", flush=True)
            try:
                size_result["paths"][key] = bench_path(key, args.ckpt, inputs, device, args.iters, reference)
            except torch.cuda.OutOfMemoryError as e:
                size_result["paths"][key] = {"skipped": f"out of memory: {str(e)[:120]}"}
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
        result["sizes"].append(size_result)
        print(format_size_table(size_result), flush=True)
    result["verdicts"] = verdicts(result)
    print("\n".join(["targets (fast path (d), this run):"] + [f"  {v}" for v in result["verdicts"]]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
