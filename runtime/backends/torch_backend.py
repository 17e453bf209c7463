"""PyTorch backend: a checkpoint (bundle, or the official generator + feature + VGG files), FP32 or the FP16
policy of ``rrsr_model.precision``, on the CPU or a CUDA device. The numerical reference of every parity.

On CUDA the custom ops (MDCN, RAS, PatchMatch) run either PyTorch's reference kernels or the project's compiled
CUDA kernels (``plugins/torch``, built on first use): ``kernels`` = "reference", "compiled", or "auto" = compiled
for the FP16 policy on CUDA when the extension builds (tensor cores; at 1080p output 409 ms instead of 905 ms on an
H200), the references otherwise (FP32 keeps PyTorch's kernels: the compiled FP32 PatchMatch is exact but slow).

``compile=True`` is the fast path (``runtime.fast_path``): the model's stages torch.compile'd with the custom ops
opaque, and on CUDA one CUDA graph per input shape; FP32 then runs without TF32 (held to 1e-4 of the FP32 model)."""
from __future__ import annotations

import contextlib
import copy
import sys
from typing import Callable, Optional

import numpy as np
import torch

from rrsr_model.checkpoint import CheckpointError, load_model
from rrsr_model.precision import to_fp16

from .base import BackendError, BackendUnavailable, Feeds, Loader, Runner, to_prepared

PRECISIONS = ("fp32", "fp16")
KERNELS = ("auto", "compiled", "reference")


def resolve_device(device: Optional[str]) -> str:
    """'auto'/None -> cuda when available; a CUDA device that is not there is refused with the reason."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        why = "this torch is a CPU build" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise BackendUnavailable(f"device {device!r} asked for, but {why}")
    if device != "cpu" and not device.startswith("cuda"):
        raise BackendError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto")
    return device


def strict_fp32() -> None:
    """Switch TF32 off (process-wide): a TF32 "FP32" reference on a GPU would itself miss the 1e-4 parity bar.
    Used for parity references, not for timing (PyTorch's defaults are what a user gets)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def compiled_kernels_unavailable(device: str) -> Optional[str]:
    """Why the compiled kernels cannot serve ``device`` (None: they can; building them on first use)."""
    if not device.startswith("cuda"):
        return f"the compiled kernels are CUDA kernels, the device is {device}"
    try:
        import plugins.torch as pt
        pt.build()
    except Exception as e:  # noqa: BLE001 - nvcc missing, build error: the reason is what the user needs
        return f"plugins/torch did not build: {type(e).__name__}: {str(e).strip().splitlines()[-1][:300]}"
    return None


class TorchRunner(Runner):
    name = "torch"

    def __init__(self, model, precision: str, device: str, source: str, kernels: str = "reference",
                 kernels_note: str = "", compile: bool = False, max_graphs: int = 4,
                 log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True)):
        self.model, self.precision, self.device, self.source = model, precision, device, source
        self.kernels, self.kernels_note = kernels, kernels_note
        self._dtype = next(model.parameters()).dtype      # as rrsr_model.super_resolve casts the inputs
        self.fast = None
        if compile:
            from ..fast_path import FastRRSR
            self.fast = FastRRSR(model, device, max_graphs=max_graphs, kernels_context=self._kernels_context,
                                 fp32_math=precision == "fp32", log=log)

    def _kernels_context(self):
        """This runner's kernel routing on CUDA (restored afterwards, so runners in one process do not mix)."""
        if not self.device.startswith("cuda"):
            return contextlib.nullcontext()
        import plugins.torch as pt
        return pt.kernels(self.kernels == "compiled")

    @torch.no_grad()
    def run(self, inputs: Feeds) -> np.ndarray:
        x = to_prepared(inputs).to(self.device, self._dtype)
        if self.fast is not None:
            sr = self.fast(x.lr, x.lr_up, x.ref, x.valid_size)
        else:
            with self._kernels_context():
                sr = self.model(x.lr, x.lr_up, x.ref, x.valid_size)
        return sr.float().cpu().numpy()

    def match_index(self, inputs: Feeds) -> np.ndarray:
        """The correspondence this runner's path computes for ``inputs`` (fast path only): the matching index of its
        own compiled CCN features, for parity's shared correspondence (runtime.parity)."""
        if self.fast is None:
            raise BackendError("match_index is the fast path's (--compile); the eager model's is PyTorch's own")
        x = to_prepared(inputs).to(self.device, self._dtype)
        with self._kernels_context():
            return self.fast.match_index(x.lr_up, x.ref).cpu().numpy()

    def synchronize(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)

    def describe(self) -> dict:
        d = {"backend": "torch", "precision": self.precision, "device": self.device, "model": self.source,
             "variant": self.model.cfg.variant, "torch": torch.__version__, "kernels": self.kernels}
        if self.kernels_note:
            d["kernels_note"] = self.kernels_note
        if self.fast is not None:
            d["compile"] = self.fast.describe()
        if self.device.startswith("cuda"):
            d["gpu"] = torch.cuda.get_device_name(self.device)
        return d

    def close(self) -> None:
        self.model = self.fast = None
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()


class TorchLoader(Loader):
    """``ckpt`` is a path (bundle or official generator file) or an already built RRSR module (copied)."""
    name = "torch"

    def __init__(self, ckpt, feature_ckpt=None, vgg_ckpt=None, precision: str = "fp32", device: str = "cpu",
                 kernels: str = "auto", compile: bool = False):
        if precision not in PRECISIONS:
            raise BackendError(f"unknown precision {precision!r} for the torch backend; choose {PRECISIONS}")
        if kernels not in KERNELS:
            raise BackendError(f"unknown kernels {kernels!r} for the torch backend; choose {KERNELS}")
        self.ckpt, self.feature_ckpt, self.vgg_ckpt = ckpt, feature_ckpt, vgg_ckpt
        self.precision, self.device, self.kernels, self.compile = precision, device, kernels, compile

    def _kernels(self, device: str) -> tuple[str, str]:
        """(kernels to run, note): "compiled" is refused with the reason when unavailable; "auto" falls back."""
        if self.kernels == "reference" or (self.kernels == "auto" and (self.precision != "fp16"
                                                                       or not device.startswith("cuda"))):
            return "reference", ""
        why = compiled_kernels_unavailable(device)
        if why is None:
            return "compiled", ""
        if self.kernels == "compiled":
            raise BackendUnavailable(f"--torch-kernels compiled: {why}")
        return "reference", f"compiled kernels not used: {why}"

    def load(self) -> TorchRunner:
        device = resolve_device(self.device)
        if isinstance(self.ckpt, torch.nn.Module):
            model, source = copy.deepcopy(self.ckpt).float().to(device).eval(), "<in-memory model>"
        else:
            source = str(self.ckpt)
            try:
                model = load_model(self.ckpt, feature_ckpt=self.feature_ckpt, vgg_ckpt=self.vgg_ckpt, device=device)
            except (CheckpointError, FileNotFoundError, ValueError) as e:
                raise BackendError(str(e)) from None
        kernels, note = self._kernels(device)
        if self.precision == "fp16":
            to_fp16(model)     # on the CPU this runs (slowly): useful for parity, not for speed
        return TorchRunner(model, self.precision, device, source, kernels, note, compile=self.compile)
