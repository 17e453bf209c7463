"""The two engine targets, what differs between them, and how ``auto`` picks one. One build flow
(``build_engine``) and one runner (``backends.trt_backend``) serve both; this module holds the differences.

- ``trt``: full TensorRT (>= 10.3, module ``tensorrt``). Builds on, and for, the GPU of the build machine
  (Jetson Orin, H100/H200, ...); the engine runs on that GPU model only. Timing cache; plugins loaded from the
  library named in the sidecar.
- ``rtx``: TensorRT for RTX (module ``tensorrt_rtx``, ``pip install tensorrt-rtx-cu13==1.7.1.116`` or the
  project's ``rtx`` extra). Builds ahead of time without a GPU for chosen compute capabilities (RTX-class GPUs:
  Turing to Blackwell; no Hopper/SM 9.0, no Jetson), JIT-compiles kernels when the engine is loaded (runtime cache),
  has no timing cache (a no-op there since RTX 1.2) and no FP16 builder flag (strongly typed only, as TensorRT 11).
  Plugins enter only through the ONNX parser and can be serialized into the engine. Its parser needs the
  ``libtensorrt_rtx.so`` link (``runtime.rtx_link``).

TensorRT is imported only by ``import_target``; nothing here loads it at import time.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Optional

from .backends.base import BackendUnavailable

# TensorRT-RTX 1.7's builder targets (tensorrt_rtx.ComputeCapability; CURRENT = the GPU of the build machine)
RTX_COMPUTE_CAPABILITIES = ("7.5", "8.0", "8.6", "8.9", "12.0", "12.1")
# What GPUs each of those compute capabilities is, for sidecars and refusals that a user can act on
GPU_FAMILIES = {
    "7.5": "Turing: GeForce RTX 20xx, Quadro RTX, T4",
    "8.0": "Ampere: A100, A30",
    "8.6": "Ampere: GeForce RTX 30xx, RTX A2000-A6000, A10, A40",
    "8.9": "Ada: GeForce RTX 40xx, RTX Ada generation, L4, L40",
    "12.0": "Blackwell: GeForce RTX 50xx, RTX PRO Blackwell",
    "12.1": "Blackwell: DGX Spark (GB10)",
}


@dataclass(frozen=True)
class Target:
    name: str                   # "trt" | "rtx": --target, and the sidecar's "target"
    module: str                 # the Python module
    title: str                  # for messages
    install: str                # how to install it
    builds_without_gpu: bool
    timing_cache: bool          # the builder has a (working) timing cache
    runtime_cache: bool         # engines JIT-compile kernels at load time into a runtime cache
    serializes_plugins: bool    # plugin libraries go into the engine (config.plugins_to_serialize) by default
    parser_link: bool           # its ONNX parser needs the libtensorrt_rtx.so link (runtime.rtx_link)


TRT = Target("trt", "tensorrt", "TensorRT", "TensorRT >= 10.3 (JetPack on Jetson, the tensorrt wheels elsewhere)",
             builds_without_gpu=False, timing_cache=True, runtime_cache=False, serializes_plugins=False,
             parser_link=False)
RTX = Target("rtx", "tensorrt_rtx", "TensorRT-RTX", "pip install tensorrt-rtx-cu13==1.7.1.116 (or pip install -e .[rtx])",
             builds_without_gpu=True, timing_cache=False, runtime_cache=True, serializes_plugins=True,
             parser_link=True)
TARGETS = {t.name: t for t in (TRT, RTX)}


def import_target(target: Target):
    """The target's TensorRT module, or BackendUnavailable saying it is not installed and how to get it."""
    try:
        return importlib.import_module(target.module)
    except ImportError as e:
        raise BackendUnavailable(f"{target.title} is not installed (import {target.module}: {e}); install "
                                 f"{target.install}") from None


def resolve(name: str):
    """(Target, module, why) for --target ``name``: trt, rtx, or auto = trt when ``tensorrt`` imports, else rtx when
    ``tensorrt_rtx`` does (``why`` says which and why). BackendUnavailable when the asked one (or, for auto, both)
    is missing."""
    if name != "auto":
        if name not in TARGETS:
            raise BackendUnavailable(f"unknown target {name!r}; choose trt, rtx or auto")
        t = TARGETS[name]
        return t, import_target(t), f"{name} (asked for)"
    reasons = []
    for t in (TRT, RTX):
        try:
            mod = import_target(t)
        except BackendUnavailable as e:
            reasons.append(str(e))
            continue
        skipped = f"; {reasons[0]}" if reasons else ""
        return t, mod, f"{t.name} (auto: {t.title} {mod.__version__} is installed{skipped})"
    raise BackendUnavailable("no TensorRT to build with: " + "; ".join(reasons))


def parse_compute_capabilities(text: str) -> list[str]:
    """``--compute-capability``: "current", or one or more of RTX's targets as 89 / 8.9 / sm89, comma-separated;
    returned as ["current"] or sorted "X.Y" strings. ValueError naming the bad entry and the choices."""
    items = [s.strip().lower() for s in text.split(",") if s.strip()]
    if items == ["current"]:
        return items
    out = set()
    for s in items:
        v = s[2:] if s.startswith("sm") else s
        cc = v if "." in v else (f"{v[:-1]}.{v[-1]}" if v.isdigit() and len(v) >= 2 else None)
        if cc not in RTX_COMPUTE_CAPABILITIES:
            raise ValueError(f"--compute-capability: {s!r} is not a TensorRT-RTX target; choose 'current' or one or "
                             f"more of {', '.join(c.replace('.', '') for c in RTX_COMPUTE_CAPABILITIES)} "
                             f"(TensorRT-RTX has no SM 9.0 / Hopper target)")
        out.add(cc)
    if not out:
        raise ValueError("--compute-capability is empty; pass 'current' or e.g. 89,120")
    return sorted(out, key=lambda c: tuple(int(x) for x in c.split(".")))


def gpus_of(ccs) -> str:
    """"compute capability 8.9 (Ada: GeForce RTX 40xx, ...) or 12.0 (...)": the GPUs an engine runs on."""
    return "compute capability " + " or ".join(f"{c} ({GPU_FAMILIES.get(c, 'unknown')})" for c in ccs)


def current_sm() -> Optional[tuple[str, str]]:
    """(GPU name, "X.Y") of the first visible CUDA GPU, or None without one."""
    from .backends.trt_backend import gpu_info
    try:
        g = gpu_info()
    except BackendUnavailable:
        return None
    return g["gpu_name"], g["gpu_sm"]
