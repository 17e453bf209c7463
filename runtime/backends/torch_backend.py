"""PyTorch backend: a checkpoint (bundle, or the official generator + feature + VGG files), FP32 or the FP16
policy of ``rrsr_model.precision``, on the CPU or a CUDA device. The numerical reference of every parity."""
from __future__ import annotations

import copy
from typing import Optional

import numpy as np
import torch

from rrsr_model.checkpoint import CheckpointError, load_model
from rrsr_model.precision import to_fp16

from .base import BackendError, BackendUnavailable, Feeds, Loader, Runner, to_prepared

PRECISIONS = ("fp32", "fp16")


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


class TorchRunner(Runner):
    name = "torch"

    def __init__(self, model, precision: str, device: str, source: str):
        self.model, self.precision, self.device, self.source = model, precision, device, source
        self._dtype = next(model.parameters()).dtype      # as rrsr_model.super_resolve casts the inputs

    @torch.no_grad()
    def run(self, inputs: Feeds) -> np.ndarray:
        x = to_prepared(inputs).to(self.device, self._dtype)
        sr = self.model(x.lr, x.lr_up, x.ref, x.valid_size)
        return sr.float().cpu().numpy()

    def synchronize(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)

    def describe(self) -> dict:
        d = {"backend": "torch", "precision": self.precision, "device": self.device, "model": self.source,
             "variant": self.model.cfg.variant, "torch": torch.__version__}
        if self.device.startswith("cuda"):
            d["gpu"] = torch.cuda.get_device_name(self.device)
        return d

    def close(self) -> None:
        self.model = None
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()


class TorchLoader(Loader):
    """``ckpt`` is a path (bundle or official generator file) or an already built RRSR module (copied)."""
    name = "torch"

    def __init__(self, ckpt, feature_ckpt=None, vgg_ckpt=None, precision: str = "fp32", device: str = "cpu"):
        if precision not in PRECISIONS:
            raise BackendError(f"unknown precision {precision!r} for the torch backend; choose {PRECISIONS}")
        self.ckpt, self.feature_ckpt, self.vgg_ckpt = ckpt, feature_ckpt, vgg_ckpt
        self.precision, self.device = precision, device

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
        if self.precision == "fp16":
            to_fp16(model)     # on the CPU this runs (slowly): useful for parity, not for speed
        return TorchRunner(model, self.precision, device, source)
