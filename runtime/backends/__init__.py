"""Backends behind one interface (``base.Loader.load() -> Runner``; ``Runner.run``, ``Runner.describe``), and
``choose``: the loader for a backend name, or for ``auto`` the fastest one available for the given model files
(trt > ort-cuda > torch-cuda > ort-cpu > torch-cpu)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from .base import BackendError, BackendUnavailable, Loader, Runner, SRResult, super_resolve, to_feeds
from .ort_backend import OrtLoader
from .torch_backend import TorchLoader
from .trt_backend import TrtLoader

BACKENDS = ("trt", "ort", "torch")
AUTO_ORDER = ("trt", "ort-cuda", "torch-cuda", "ort-cpu", "torch-cpu")

__all__ = ["BACKENDS", "AUTO_ORDER", "ModelFiles", "Choice", "choose", "load_runner", "BackendError", "BackendUnavailable",
           "Loader", "Runner", "SRResult", "super_resolve", "to_feeds", "OrtLoader", "TorchLoader", "TrtLoader"]


@dataclass
class ModelFiles:
    engine: Optional[str] = None
    onnx: Optional[str] = None
    ckpt: Optional[object] = None          # path, or an RRSR module (tests, parity)
    feature_ckpt: Optional[str] = None
    vgg_ckpt: Optional[str] = None
    plugins: Optional[str] = None          # TensorRT plugin library
    precision: str = "fp32"                # torch backend only; graphs and engines carry theirs
    torch_kernels: str = "auto"            # torch backend on CUDA: auto / compiled / reference (torch_backend)
    compile: bool = False                  # torch backend: the fast path (runtime.fast_path)
    threads: Optional[int] = None          # ort: intra-op threads (default: ORT's own, one per core)

    def given(self) -> list[str]:
        return [n for n, v in (("--engine", self.engine), ("--onnx", self.onnx), ("--ckpt", self.ckpt)) if v is not None]


def _loader(kind: str, files: ModelFiles, device: str) -> Loader:
    if kind == "trt":
        if files.engine is None:
            raise BackendError("the trt backend needs --engine (an engine built by rrsr-build-engine)")
        return TrtLoader(files.engine, files.plugins, device="cuda:0" if device in ("auto", "cuda") else device)
    if kind == "ort":
        if files.onnx is None:
            raise BackendError("the ort backend needs --onnx (a graph written by rrsr-export)")
        return OrtLoader(files.onnx, device=device, threads=files.threads)
    if kind == "torch":
        if files.ckpt is None:
            raise BackendError("the torch backend needs --ckpt (an rrsr bundle, or the official generator file "
                               "with --feature-ckpt and --vgg-ckpt)")
        return TorchLoader(files.ckpt, files.feature_ckpt, files.vgg_ckpt, files.precision, device,
                           kernels=files.torch_kernels, compile=files.compile)
    raise BackendError(f"unknown backend {kind!r}; choose one of {BACKENDS} or auto")


@dataclass
class Choice:
    runner: Runner
    reason: str                               # which backend, and why it was picked
    skipped: list[str] = field(default_factory=list)


def load_runner(backend: str, files: ModelFiles, device: str = "auto") -> Choice:
    """Load ``backend`` (or pick with ``auto``). Under auto, a backend whose runtime is missing here
    (BackendUnavailable) is skipped with its reason; a broken file is an error, never silently skipped."""
    if backend != "auto":
        return Choice(_loader(backend, files, device).load(), f"{backend} (asked for)")
    if not files.given():
        raise BackendError("no model given: pass --engine, --onnx or --ckpt")
    skipped = []
    for cand in AUTO_ORDER:
        kind, _, dev = cand.partition("-")
        if device != "auto" and not device.startswith(dev or "cuda"):   # trt runs only on a GPU
            continue
        src = {"trt": files.engine, "ort": files.onnx, "torch": files.ckpt}[kind]
        if src is None:
            continue
        why = _unavailable(cand, files)
        if why:
            skipped.append(f"{cand}: {why}")
            continue
        try:
            runner = _loader(kind, files, dev or device).load()
        except BackendUnavailable as e:
            skipped.append(f"{cand}: {e}")
            continue
        return Choice(runner, f"{cand} (auto: fastest available of {', '.join(AUTO_ORDER)})", skipped)
    if not skipped:
        raise BackendUnavailable(f"no backend for {' / '.join(files.given())} runs on device {device!r} "
                                 f"(TensorRT engines need a GPU)")
    raise BackendUnavailable("no backend can run the given model here:\n  " + "\n  ".join(skipped))


def _unavailable(cand: str, files: ModelFiles) -> Optional[str]:
    """Why a candidate's runtime is absent here (None when present), without loading anything."""
    if cand == "trt":
        from .. import sidecar as sc
        from .trt_backend import tensorrt_available
        try:             # TensorRT or TensorRT-RTX: the engine's sidecar says (a bad sidecar fails in load())
            target = sc.target_of(sc.read_sidecar(files.engine))
        except sc.SidecarError:
            target = "trt"
        return tensorrt_available(target)
    if cand == "ort-cuda":
        from .ort_backend import CUDA_EP, available_providers
        have = available_providers()
        return None if CUDA_EP in have else f"onnxruntime-gpu not installed (providers: {', '.join(have) or 'none'})"
    if cand == "torch-cuda":
        import torch
        if not torch.cuda.is_available():
            return "this torch is a CPU build" if torch.version.cuda is None else "no CUDA GPU visible"
    return None


def choose(backend: str, files: ModelFiles, device: str = "auto") -> Choice:
    return load_runner(backend, files, device)
