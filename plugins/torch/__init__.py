"""PyTorch CUDA extension backing ``rrsr_model.ops.*.use_kernel("cuda", ...)`` with the plugins' CUDA kernels.

    import plugins.torch as pt
    pt.build()       # compiles plugins/kernels/*/*.cu + rrsr_torch_ops.cpp into build/plugins-torch (cached)
    pt.register()    # the model's MDCN / RAS / PatchMatch ops now run the compiled kernels on CUDA tensors
    pt.unregister()  # back to the PyTorch reference kernels
    with pt.kernels(True): ...   # the compiled kernels within a block, the previous routing restored after

``build()`` returns :class:`Kernels`: ``mdcn_forward``, ``ras_forward`` and ``patch_match_forward`` of the extension
(``rrsr_torch_ops``); each checks device, dtype, contiguity and shapes (a RuntimeError naming the argument) and
launches on the current CUDA stream (workspace from torch's allocator). ``mdcn_forward`` and ``patch_match_forward``
take ``algo`` = 0 (auto), 1 (SIMT, exact FP32 arithmetic) or 2 (tensor cores, FP16 operands; FP16 features for
MDCN), ``patch_match_forward`` also 3 (the FP32 diagonal path) and 4 (tensor cores, 64 x 128 tiles: v3); ``mdcn_forward`` also ``tile`` = [bm, bn, splits]
to pin the octet kernel's tile, [bm, bn, splits, 1] for its register-B variant, [bm, bn, splits, 0, 3] for its
three-stage K pipeline, [256, 64, splits, 0, 2, 2] for its 256x64 tile with registers capped for two blocks per SM,
[0, 0, 0, 0, 0, 0, band] with ``variant`` 4 for column-slab bands of ``band`` pixels (benchmarks and tests; [] or
zeros = the launcher's choice), and ``variant`` = 0..4 (``mdcn::Variant``, the TensorRT plugin's custom tactics:
each applies where the shape allows). Needs nvcc, ninja and a CUDA build of torch; nothing is compiled at import
time.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
KERNELS = PLUGINS / "kernels"
BUILD_DIR = ROOT / "build" / "plugins-torch"
NAME = "rrsr_torch_ops"
SOURCES = [
    PLUGINS / "torch" / "rrsr_torch_ops.cpp",
    KERNELS / "mdcn" / "mdcn.cu",
    KERNELS / "ras" / "ras.cu",
    KERNELS / "patch_match" / "patch_match.cu",
]
# sm_90 = H100/H200 (the test GPU). Add "-gencode=arch=compute_87,code=sm_87" for Orin if ever needed here.
# torch adds -D__CUDA_NO_HALF_OPERATORS__ & co. by default; the kernels are written for (and host-checked with)
# plain cuda_fp16.h as in plugins/CMakeLists.txt, so undo those defines. When -arch is given, torch adds no
# arch flags of its own.
CUDA_FLAGS = ["-O3", "-arch=sm_90", "--expt-relaxed-constexpr", "-lineinfo",
              "-U__CUDA_NO_HALF_OPERATORS__", "-U__CUDA_NO_HALF_CONVERSIONS__",
              "-U__CUDA_NO_HALF2_OPERATORS__", "-U__CUDA_NO_BFLOAT16_CONVERSIONS__"]
CXX_FLAGS = ["-O3"]  # torch adds -std=c++20 itself

_module = None


def generate_header(out_dir: Path = BUILD_DIR / "generated") -> Path:
    """Run plugins/ops/gen_op_header.py (as CMake does) -> out_dir/rrsr_op_spec.h."""
    out_dir.mkdir(parents=True, exist_ok=True)
    header = out_dir / "rrsr_op_spec.h"
    specs = sorted(str(p) for p in (PLUGINS / "ops").glob("*.json"))
    subprocess.run([sys.executable, str(PLUGINS / "ops" / "gen_op_header.py"), "--out", str(header), *specs],
                   check=True)
    return header


def build(verbose: bool = False):
    """Compile (or load the cached build of) the extension and return the module."""
    global _module
    if _module is not None:
        return _module
    import torch
    from torch.utils import cpp_extension

    if torch.version.cuda is None:
        raise RuntimeError(f"plugins.torch.build: torch {torch.__version__} is a CPU-only build; the extension "
                           "needs a CUDA build of torch and nvcc")
    if not verbose and not any(BUILD_DIR.glob(f"{NAME}*.so")):
        print(f"plugins.torch: compiling the CUDA extension into {BUILD_DIR} (first use; about a minute)",
              file=sys.stderr, flush=True)
    header = generate_header()
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "9.0")  # only silences torch's warning; -arch decides
    with exclusive_build():
        raw = cpp_extension.load(
            name=NAME, sources=[str(s) for s in SOURCES], build_directory=str(BUILD_DIR),
            extra_include_paths=[str(KERNELS), str(header.parent)],
            extra_cflags=CXX_FLAGS, extra_cuda_cflags=CUDA_FLAGS, verbose=verbose)
    _module = Kernels(raw)
    return _module


@contextlib.contextmanager
def exclusive_build():
    """One build at a time in BUILD_DIR, under a lock the OS drops when its holder dies. torch's own lock file
    (``lock`` in the build folder) outlives a build that was killed (a timeout, Ctrl-C), and every later build then
    waits on it forever; holding this lock, no build of ours is running, so such a file is stale and goes."""
    import fcntl
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with open(BUILD_DIR / ".build.flock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        stale = BUILD_DIR / "lock"
        if stale.exists():
            print(f"plugins.torch: removing {stale}, left by an interrupted build", file=sys.stderr, flush=True)
            stale.unlink(missing_ok=True)
        yield


class Kernels:
    """The compiled functions with errors raised here: each C++ entry point returns (outputs, message) and never
    throws, because a C++ exception unwinding out of an extension built by a different g++ than torch can crash the
    process (it did on the GPU image). ``mdcn_forward`` / ``ras_forward`` return a tensor, ``patch_match_forward``
    (index, score)."""

    def __init__(self, raw):
        self.raw = raw
        self.__file__ = raw.__file__

    @staticmethod
    def _unwrap(result):
        outputs, error = result
        if error:
            raise RuntimeError(error)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def mdcn_forward(self, *args, **kwargs):
        return self._unwrap(self.raw.mdcn_forward(*args, **kwargs))

    def ras_forward(self, *args, **kwargs):
        return self._unwrap(self.raw.ras_forward(*args, **kwargs))

    def patch_match_forward(self, *args, **kwargs):
        return self._unwrap(self.raw.patch_match_forward(*args, **kwargs))


# ---- hooks for rrsr_model.ops.*.use_kernel: same arguments as the custom ops. The kernels take contiguous
# tensors of the launchers' type combinations; anything else (e.g. bf16) falls back to the reference, so the op
# stays correct whatever the model passes.

_F = None  # (float32, float16), set on first use


def _floats():
    global _F
    if _F is None:
        import torch
        _F = (torch.float32, torch.float16)
    return _F


def _c(t):
    return None if t is None else t.contiguous()


def _mdcn_kernel(x, weight, offset, bias, mask, strides, pads, dilations, group, offset_group):
    from rrsr_model.ops.mdcn import mdcn_reference
    f = _floats()
    ok = (x.dtype in f and weight.dtype == x.dtype and (bias is None or bias.dtype == x.dtype)
          and offset.dtype in f and (mask is None or mask.dtype == offset.dtype))
    if not ok:
        return mdcn_reference(x, weight, offset, bias, mask, strides, pads, dilations, group, offset_group)
    return _module.mdcn_forward(_c(x), _c(weight), _c(offset), _c(bias), _c(mask), list(strides), list(pads),
                                list(dilations), int(group), int(offset_group))


def _ras_kernel(x, ref, weight, bias, routing_weight, routing_bias, se1_weight, se1_bias, se2_weight, se2_bias,
                valid_size=None):
    from rrsr_model.ops.ras import ras_reference
    f = _floats()
    args = (x, ref, weight, bias, routing_weight, routing_bias, se1_weight, se1_bias, se2_weight, se2_bias)
    ok = (x.dtype in f and all(t.dtype == x.dtype for t in args[1:4])
          and routing_weight.dtype in f and all(t.dtype == routing_weight.dtype for t in args[5:]))
    if not ok:
        return ras_reference(*args, valid_size)
    if valid_size is not None:
        valid_size = valid_size.to(x.device)  # the kernel reads it on the device
    return _module.ras_forward(*(_c(t) for t in args), _c(valid_size))


def _patch_match_kernel(feat_in, feat_ref, patch_size):
    from rrsr_model.ops.patch_match import patch_match_reference
    f = _floats()
    if feat_in.dtype not in f or feat_ref.dtype != feat_in.dtype:
        return patch_match_reference(feat_in, feat_ref, patch_size)
    index, score = _module.patch_match_forward(_c(feat_in), _c(feat_ref), int(patch_size))
    return index, score


def _hooks():
    """(op module, hook) for the three ops (imported lazily: the model code is not needed to build)."""
    from rrsr_model.ops import mdcn, patch_match, ras
    return ((mdcn, _mdcn_kernel), (ras, _ras_kernel), (patch_match, _patch_match_kernel))


def register(verbose: bool = False) -> None:
    """Build if needed and route the model's ops on CUDA tensors to the compiled kernels."""
    build(verbose)
    for op, hook in _hooks():
        op.use_kernel("cuda", hook)


def unregister() -> None:
    """Back to the PyTorch reference kernels on CUDA."""
    for op, _ in _hooks():
        op.use_kernel("cuda", None)


@contextlib.contextmanager
def kernels(enabled: bool):
    """Within the block the model's ops on CUDA tensors run the compiled kernels (enabled) or the PyTorch references
    (not); the previous routing is restored afterwards, so two runners in one process do not see each other's."""
    if enabled:
        build()
    with contextlib.ExitStack() as stack:
        for op, hook in _hooks():
            stack.enter_context(op.using_kernel("cuda", hook if enabled else None))
        yield


def module() -> Optional[object]:
    """The loaded extension, or None before build()."""
    return _module
