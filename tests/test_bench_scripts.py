"""scripts/bench_kernels.py's MDCN table code on the CPU, so a bookkeeping or formatting bug fails here rather than
in scarce GPU time. The kernels are the PyTorch reference and the timings a constant: nothing here measures
anything; what is checked is that every row and variant line is produced, with errors computed against the
reference."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from rrsr_model.ops.mdcn import mdcn_reference

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import bench_kernels as bk  # noqa: E402


class _ReferenceKernels:
    """plugins.torch's mdcn_forward signature, computed by the reference (tuning arguments ignored)."""

    def mdcn_forward(self, x, w, off, b, m, strides, pads, dilations, group, offset_group, algo=0, tile=(),
                     variant=0):
        return mdcn_reference(x.float(), w.float(), off.float(), b.float(), m.float(), strides, pads, dilations,
                              group, offset_group).to(x.dtype)


class _Budget:
    cap = 10.0

    def left(self):
        return 100.0


def test_bench_mdcn_rows_on_the_cpu(monkeypatch, capsys):
    randn, rand, generator = torch.randn, torch.rand, torch.Generator

    def no_device(kw):
        kw.pop("device", None)
        return kw

    monkeypatch.setattr(torch, "randn", lambda *a, **kw: randn(*a, **no_device(kw)))
    monkeypatch.setattr(torch, "rand", lambda *a, **kw: rand(*a, **no_device(kw)))
    monkeypatch.setattr(torch, "Generator", lambda device=None: generator())
    monkeypatch.setattr(bk, "gpu_time", lambda fn, budget, **kw: (fn(), {"ms": 1.0, "eager_ms": 1.0,
                                                                         "peak_mb": 0.0})[1])
    monkeypatch.setattr(bk, "MDCN_SHAPES", [(64, 8), (128, 8), (256, 8)])
    rows = bk.bench_mdcn(_ReferenceKernels(), _Budget(), iters=1)
    out = capsys.readouterr().out
    assert [(r["c"], r["dtype"]) for r in rows] == [(c, d) for c in (64, 128, 256) for d in ("float32", "float16")]
    fp16 = [r for r in rows if r["dtype"] == "float16"]
    assert all(r["fp16_err_ours"] < 2e-3 and "gemm_cublas" in r for r in fp16)
    assert "ours_regb" in fp16[0] and "ours_two_blocks" in fp16[2]
    for line in ("register-B variant:", "three-stage pipeline:",
                 "column slab (im2col + GEMM)", "cuBLAS GEMM alone", "256x64 at two blocks per SM"):
        assert line in out, line


class _ReferencePatchMatch:
    """plugins.torch's patch_match_forward signature, computed by the reference (the algo ignored)."""

    def patch_match_forward(self, fi, fr, k, algo=0):
        from rrsr_model.ops.patch_match import patch_match_reference
        return patch_match_reference(fi, fr, k)


def test_bench_patch_match_rows_on_the_cpu(monkeypatch, capsys):
    """The PatchMatch table (every kernel column, the v3 column and the effective TFLOP/s line) on tiny CCN-like
    features, the reference standing in for every kernel and a constant time for every call."""
    def ccn_like(h, w, c=256, seed=0):
        g = torch.Generator().manual_seed(seed)
        f = torch.randn(1, 16, h, w, generator=g)
        return f, torch.roll(f, shifts=(1, -2), dims=(2, 3)) + 0.1 * torch.randn(1, 16, h, w, generator=g)

    monkeypatch.setattr(bk, "_ccn_like", ccn_like)
    monkeypatch.setattr(bk, "bench", lambda fn, budget, **kw: (fn(), {"ms": 2.0, "runs": 1, "peak_mb": 0.0})[1])
    monkeypatch.setattr(bk, "PM_SIZES", [(6, 7), (8, 9)])
    rows = bk.bench_patch_match(_ReferencePatchMatch(), _Budget(), iters=1)
    out = capsys.readouterr().out
    assert [(r["h"], r["w"]) for r in rows] == [(6, 7), (8, 9)]
    for r in rows:
        assert r["tc3_indices_differ_from_tc"] == 0 and r["diag_index_mismatches"] == 0
        assert abs(r["ours_tc3_fp16"]["tflops"] - 2.0 * (r["h"] * r["w"]) ** 2 * 256 / 2e-3 / 1e12) < 1e-12
    assert "ours tc3 fp16" in out and "effective: tc_fp16" in out and "tc3 indices differing from tc: 0" in out
