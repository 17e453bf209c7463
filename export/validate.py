"""Run an exported graph next to the PyTorch FP32 model on sample inputs and report parity."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import onnx
import torch

from rrsr_model.network import RRSR

from .check import Parity, ReferenceRunner, compare, ort_session, uses_custom_ops
from .matching import compare_matching, fixed_index_kernel, index_output, matching_kernel, with_index_output
from .onnx_export import INPUT_NAMES, sample_inputs

FP32_TOLERANCE = 1e-4      # max abs, FP32 graphs
FP16_MIN_PSNR = 45.0       # dB against the FP32 model, FP16 graphs


def criterion(precision: str) -> str:
    return f"max abs <= {FP32_TOLERANCE:g}" if precision == "fp32" else f"PSNR >= {FP16_MIN_PSNR:g} dB"


@dataclass
class ParityResult:
    lr_size: tuple[int, int]
    runner: str
    parity: Parity
    seconds: float
    matching: Optional[dict] = None     # the graph's correspondence vs PyTorch's (export.matching), when shared

    def passes(self, precision: str = "fp32") -> bool:
        if self.matching is not None and not self.matching["near_ties_only"]:
            return False
        if precision == "fp32":
            return self.parity.max_abs <= FP32_TOLERANCE
        return self.parity.psnr >= FP16_MIN_PSNR


def make_runner(proto: onnx.ModelProto, allow_fallback: bool = True):
    """(runner, description). ONNX Runtime; for graphs with rrsr nodes, with the project's custom-op library, or
    the slow Python fallback when that is not built (and ``allow_fallback``)."""
    try:
        return ort_session(proto), "onnxruntime CPU" + (" + rrsr custom-op library" if uses_custom_ops(proto) else "")
    except FileNotFoundError as e:
        if not allow_fallback:
            raise
        return ReferenceRunner(proto), f"slow Python fallback (onnx.reference) — {e}"


def validate(model: RRSR, proto: onnx.ModelProto, sizes: list[tuple[int, int]], batch: int = 1,
             runner=None) -> list[ParityResult]:
    """Parity of the graph against ``model`` (PyTorch FP32, its default chunked matcher) at each LR size."""
    if runner is None:
        runner, name = make_runner(proto)
    else:
        name = type(runner).__name__
    results = []
    model = model.float().cpu().eval()
    # an ONNX Runtime graph matching with RrsrPatchMatch: the reference uses its correspondence (export.matching)
    shared = None
    if not isinstance(runner, ReferenceRunner) and with_index_output(proto) is not None:
        shared = ort_session(with_index_output(proto))
    for i, size in enumerate(sizes):
        args = sample_inputs(batch, size, seed=100 + i)
        feeds = dict(zip(INPUT_NAMES, [a.numpy() for a in args]))
        index = shared.run([index_output(proto)], feeds)[0] if shared else None
        with torch.no_grad(), matching_kernel(fixed_index_kernel(index) if shared else None):
            expected = model(*args).numpy()
        t = time.perf_counter()
        out = runner.run(None, feeds)[0]
        dt = time.perf_counter() - t
        matching = compare_matching(model, args[1], args[2], index) if shared else None
        results.append(ParityResult(size, name, compare(np.asarray(out, dtype=np.float32), expected), dt, matching))
    return results
