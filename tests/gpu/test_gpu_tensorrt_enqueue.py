"""The TensorRT plugins' enqueue on a GPU vs the PyTorch references, without TensorRT's library.

Each case writes its inputs and attributes to a folder and runs ``rrsr_trt_enqueue_check`` (built by
``scripts/build_tensorrt_plugins.sh`` next to the plugin libraries; plugins/tensorrt/tests/trt_enqueue_check.cpp):
it loads ``librrsr_trt_plugins_dynamic.so`` through ``getCreators``, creates the plugin from fields, round-trips its
fields through ``getFieldsToSerialize`` into the runtime plugin, makes the calls TensorRT makes before enqueue
(output types/shapes, formats, configurePlugin, getWorkspaceSize, attachToContext, onShapeChange) and runs enqueue
on GPU buffers. The outputs are compared here with ``rrsr_model.ops`` references computed on the CPU in FP32 (FP16
cases: from the same FP16-rounded values).

Finds the programs in ``RRSR_TRT_BUILD_DIR`` (default ``<repo>/build/plugins-trt``). Skips, with the reason, without
CUDA or without the built harness / library. Needs neither the ``tensorrt`` package nor libnvinfer.
"""
from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rrsr_model.ops.mdcn import mdcn_reference
from rrsr_model.ops.patch_match import PATCH_NORM_EPS, patch_match_reference
from rrsr_model.ops.ras import ras_reference

REPO = Path(__file__).resolve().parents[2]
BUILD_DIR = Path(os.environ.get("RRSR_TRT_BUILD_DIR", REPO / "build" / "plugins-trt"))
HARNESS = BUILD_DIR / "rrsr_trt_enqueue_check"
# RRSR_TRT_KEEP_CASES=<dir>: write the case folders there (scripts/gpu_check.sh re-runs some under compute-sanitizer)
KEEP_CASES = os.environ.get("RRSR_TRT_KEEP_CASES")
LIBRARY = BUILD_DIR / "librrsr_trt_plugins_dynamic.so"
TYPE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.int32: "int32", torch.int64: "int64"}
NP_TYPES = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "int64": np.int64}


@pytest.fixture
def case_root(tmp_path) -> Path:
    return Path(KEEP_CASES) if KEEP_CASES else tmp_path


@pytest.fixture(scope="module")
def harness():
    if not torch.cuda.is_available():
        pytest.skip(f"CUDA not available (torch {torch.__version__}): the TensorRT enqueue harness needs a GPU")
    build = "bash scripts/build_tensorrt_plugins.sh <TensorRT_ROOT> (RRSR_TRT_BUILD_DIR sets the folder)"
    if not HARNESS.is_file():
        pytest.skip(f"enqueue harness not found: {HARNESS}; build it with {build}")
    if not LIBRARY.is_file():
        pytest.skip(f"plugin library not found: {LIBRARY}; build it with {build}")
    return HARNESS


def run_plugin(harness: Path, case_dir: Path, op: str, fields: dict, inputs: list, outputs: list,
               tactic: int = 0) -> dict:
    """inputs: [(name, CPU tensor)] in plugin order; outputs: [(name, dtype, shape)]; tactic: the custom tactic
    to run (one getValidTactics offers). Returns {name: tensor}."""
    case_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"op {op}", f"layer {case_dir.name}", f"tactic {tactic}"]
    lines += [f"field {k} " + " ".join(str(int(v)) for v in (vals if isinstance(vals, (list, tuple)) else [vals]))
              for k, vals in fields.items()]
    for name, t in inputs:
        lines.append(f"input {name} {TYPE_NAMES[t.dtype]} " + " ".join(str(d) for d in t.shape))
        (case_dir / f"{name}.bin").write_bytes(t.detach().cpu().contiguous().numpy().tobytes())
    for name, dtype, shape in outputs:
        lines.append(f"output {name} {TYPE_NAMES[dtype]} " + " ".join(str(d) for d in shape))
    (case_dir / "case.txt").write_text("\n".join(lines) + "\n")
    # a non-default tactic: offer every variant, verified on a GPU or not (what this test is for)
    env = {**os.environ, "RRSR_TRT_MDCN_TACTICS": "all"} if tactic else None
    r = subprocess.run([str(harness), str(LIBRARY), str(case_dir)], capture_output=True, text=True, timeout=300,
                       env=env)
    print(r.stdout.strip())
    assert r.returncode == 0, f"harness failed (rc {r.returncode}):\n{r.stdout}\n{r.stderr}"
    assert "enqueue ok" in r.stdout, r.stdout + r.stderr
    got = {}
    for name, dtype, shape in outputs:
        arr = np.fromfile(case_dir / f"{name}.bin", dtype=NP_TYPES[TYPE_NAMES[dtype]])
        assert arr.size == math.prod(shape), f"{name}: {arr.size} values, expected shape {shape}"
        got[name] = torch.from_numpy(arr.reshape(shape).copy())
    return got


def _fp16_tol(ref: torch.Tensor) -> float:
    return max(4e-3 * ref.abs().max().item(), 1e-3)


# ---- MDCN
def _mdcn_inputs(n, c, h, w, c_out, k, pads, group, offset_group, off_scale, seed=0):
    g = torch.Generator().manual_seed(seed)
    ho = h + pads[0] + pads[2] - k + 1
    wo = w + pads[1] + pads[3] - k + 1
    x = torch.randn(n, c, h, w, generator=g)
    wt = torch.randn(c_out, c // group, k, k, generator=g) / math.sqrt(c // group * k * k)
    off = torch.randn(n, 2 * offset_group * k * k, ho, wo, generator=g) * off_scale
    b = torch.randn(c_out, generator=g)
    m = torch.rand(n, offset_group * k * k, ho, wo, generator=g)
    return x, wt, off, b, m


MDCN_CASES = {
    # name: (feature dtype, offset/mask dtype, with bias)
    "fp32": (torch.float32, torch.float32, True),
    "fp16_features_fp32_offsets": (torch.float16, torch.float32, True),
    "fp32_mask_without_bias": (torch.float32, torch.float32, False),   # 4 inputs: the 4th told apart by rank
}


@pytest.mark.parametrize("name", list(MDCN_CASES))
def test_mdcn_enqueue_matches_reference(harness, case_root, name):
    ft, ot, with_bias = MDCN_CASES[name]
    pads = (1, 1, 1, 1)
    x, wt, off, b, m = _mdcn_inputs(1, 64, 24, 30, 64, 3, pads, 1, 8, 2.0)
    x, wt, b = x.to(ft), wt.to(ft), b.to(ft)
    off, m = off.to(ot), m.to(ot)
    fields = {"strides": [1, 1], "pads": list(pads), "dilations": [1, 1], "group": 1, "offset_group": 8}
    inputs = [("X", x), ("W", wt), ("offset", off)] + ([("B", b)] if with_bias else []) + [("mask", m)]
    want = mdcn_reference(x.float(), wt.float(), off.float(), b.float() if with_bias else None, m.float(),
                          (1, 1), pads, (1, 1), 1, 8)
    got = run_plugin(harness, case_root / f"mdcn_{name}", "RrsrModulatedDeformConv", fields, inputs,
                     [("Y", ft, tuple(want.shape))])["Y"]
    err = (got.float() - want).abs().max().item()
    tol = 1e-4 if ft == torch.float32 else _fp16_tol(want)
    print(f"TensorRT mdcn {name}: max abs err {err:.3g} (tol {tol:.3g}, |ref| max {want.abs().max().item():.3g})")
    assert torch.isfinite(got).all() and err <= tol


# the custom tactics (mdcn::Variant) an FP16 stage offers: 1 three-stage pipeline (every stage), 2 register-B
# (64 output channels), 4 the column slab (every stage; 3, two blocks per SM, is the 256x64 tile's default)
@pytest.mark.parametrize("channels, tactic", [(64, 1), (64, 2), (64, 4), (128, 1), (128, 4), (256, 1), (256, 4)])
def test_mdcn_enqueue_tactics_match_reference(harness, case_root, channels, tactic):
    pads = (1, 1, 1, 1)
    x, wt, off, b, m = _mdcn_inputs(1, channels, 24, 30, channels, 3, pads, 1, 8, 2.0)
    x, wt, b = x.half(), wt.half(), b.half()
    fields = {"strides": [1, 1], "pads": list(pads), "dilations": [1, 1], "group": 1, "offset_group": 8}
    want = mdcn_reference(x.float(), wt.float(), off, b.float(), m, (1, 1), pads, (1, 1), 1, 8)
    got = run_plugin(harness, case_root / f"mdcn_tactic_{channels}_{tactic}", "RrsrModulatedDeformConv", fields,
                     [("X", x), ("W", wt), ("offset", off), ("B", b), ("mask", m)],
                     [("Y", torch.float16, tuple(want.shape))], tactic=tactic)["Y"]
    err = (got.float() - want).abs().max().item()
    tol = _fp16_tol(want)
    print(f"TensorRT mdcn {channels} channels tactic {tactic}: max abs err {err:.3g} (tol {tol:.3g})")
    assert torch.isfinite(got).all() and err <= tol


# ---- RAS
def _ras_inputs(n, cx, cr, h, w, e, c_out, seed=0):
    g = torch.Generator().manual_seed(seed)
    c = cx + cr
    r = lambda *s, scale=1.0: torch.randn(*s, generator=g) * scale  # noqa: E731
    return (r(n, cx, h, w), r(n, cr, h, w), r(e, c_out, c, 3, 3, scale=1 / math.sqrt(9 * c)), r(e, c_out, scale=0.1),
            r(e, c, scale=1 / math.sqrt(c)), r(e), r(c, c, 1, 1, scale=1 / math.sqrt(c)), r(c, scale=0.1),
            r(c_out, c, 1, 1, scale=1 / math.sqrt(c)), r(c_out, scale=0.1))


RAS_NAMES = ["X", "R", "W", "B", "routing_weight", "routing_bias", "se1_weight", "se1_bias", "se2_weight",
             "se2_bias", "valid_size"]
RAS_CASES = {
    # name: (feature dtype, gate dtype, valid_size dtype or None)
    "fp32_valid_int64": (torch.float32, torch.float32, torch.int64),
    "fp16_valid_int32": (torch.float16, torch.float16, torch.int32),
    "fp16_fp32_gates_no_valid": (torch.float16, torch.float32, None),
}


@pytest.mark.parametrize("name", list(RAS_CASES))
def test_ras_enqueue_matches_reference(harness, case_root, name):
    ft, gt, vt = RAS_CASES[name]
    n, cx, cr, h, w, e, co = 1, 64, 64, 20, 24, 4, 64
    args = _ras_inputs(n, cx, cr, h, w, e, co)
    tensors = [t.to(ft) for t in args[:4]] + [t.to(gt) for t in args[4:]]
    if vt is not None:
        tensors.append(torch.tensor([h - 3, w - 2], dtype=vt))
    want = ras_reference(*(t.float() for t in tensors[:10]), tensors[10] if vt is not None else None)
    got = run_plugin(harness, case_root / f"ras_{name}", "RrsrRefAwareSelection", {},
                     list(zip(RAS_NAMES, tensors)), [("Y", ft, tuple(want.shape))])["Y"]
    err = (got.float() - want).abs().max().item()
    tol = 1e-4 if ft == torch.float32 else _fp16_tol(want)
    print(f"TensorRT ras {name}: max abs err {err:.3g} (tol {tol:.3g}, |ref| max {want.abs().max().item():.3g})")
    assert torch.isfinite(got).all() and err <= tol


# ---- PatchMatch
def _score64(fi, fr, k, idx):
    """float64 score of reference patch idx[b, q] for every input patch q (the contract's definition)."""
    fi = F.normalize(fi.double(), dim=1, eps=1e-12)
    fr = F.normalize(fr.double(), dim=1, eps=1e-12)
    pi = F.unfold(fi, k)
    pr = F.unfold(fr, k)
    pr = pr / (pr.norm(dim=1, keepdim=True) + PATCH_NORM_EPS)
    sel = torch.gather(pr, 2, idx.reshape(idx.shape[0], 1, -1).long().expand(-1, pr.shape[1], -1))
    return (pi * sel).sum(1).reshape(idx.shape)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_patch_match_enqueue_matches_reference(harness, case_root, dtype):
    n, c, h, w, hr, wr, k = 1, 64, 20, 24, 18, 26, 3
    g = torch.Generator().manual_seed(1)
    fi = torch.randn(n, c, h, w, generator=g).to(dtype)
    fr = torch.randn(n, c, hr, wr, generator=g).to(dtype)
    idx_ref, s_ref = patch_match_reference(fi.float(), fr.float(), k)
    shape = tuple(idx_ref.shape)
    got = run_plugin(harness, case_root / f"pm_{TYPE_NAMES[dtype]}", "RrsrPatchMatch", {"patch_size": k},
                     [("F_in", fi), ("F_ref", fr)], [("index", torch.int32, shape), ("score", torch.float32, shape)])
    idx, s = got["index"], got["score"]
    n_ref = (hr - k + 1) * (wr - k + 1)
    assert int(idx.min()) >= 0 and int(idx.max()) < n_ref, (int(idx.min()), int(idx.max()))
    # FP32: exact path, only near-ties may differ; FP16 inputs may take the tensor-core argmax (FP16 operands)
    tie_tol = 1e-5 if dtype == torch.float32 else 2e-3
    diff = idx != idx_ref
    gap = 0.0
    if diff.any():
        gap = (_score64(fi, fr, k, idx) - _score64(fi, fr, k, idx_ref)).abs()[diff].max().item()
    same = ~diff
    s_err = (s - s_ref).abs()[same].max().item() if same.any() else 0.0
    s64_err = (s.double() - _score64(fi, fr, k, idx)).abs().max().item()
    print(f"TensorRT patch_match {TYPE_NAMES[dtype]}: {int(diff.sum())} index mismatches of {idx.numel()} (worst "
          f"float64 score gap {gap:.3g}, allowed < {tie_tol:g}), score err vs reference {s_err:.3g}, vs float64 of "
          f"the chosen index {s64_err:.3g}")
    assert gap < tie_tol, f"{int(diff.sum())} index mismatches, worst score gap {gap:.3g}"
    assert s_err <= 1e-5 and s64_err <= 1e-5
