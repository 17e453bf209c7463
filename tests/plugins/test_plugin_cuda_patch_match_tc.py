"""RrsrPatchMatch's diagonal CUDA paths (patch_match.cu: Algo::kTensorCore, and the FP32 Algo::kSimtDiagonal),
replayed on the CPU.

No GPU here: pm_tc_host_check.cu includes patch_match.cu and runs the path's __host__ __device__ phase functions in
the GPU's order (prep kernels per pixel, the diagonal-correlation kernel block by block with mma_tile.cuh's host
emulation of the tensor-core tiles, the split merge and the FP32 score recompute). Its results are compared with
the float64 reference of test_plugin_ort_patch_match.py: the operands are FP16, so only near ties (reference margin
< 2e-3) may pick another index, and then one whose float64 score is within 2e-3 of the best; the reported score is
recomputed in FP32 for the chosen index, so it must match that index's float64 score to 1e-5. The FP32 path
(variant 3) has FP32 operands: only float-rounding ties (margin < 1e-5) may pick another index.
"""
from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HOST_SRC = HERE / "pm_tc_host_check.cu"
FP16_TIE = 2e-3   # FP16 operands: argmax may differ below this reference margin, by less than this score gap
FP32_TIE = 1e-5   # FP32 operands (the FP32 diagonal path): likewise, for float rounding
SCORE_TOL = 1e-5  # the chosen index's score is exact FP32

_spec = importlib.util.spec_from_file_location("_pm_ort_test", HERE / "test_plugin_ort_patch_match.py")
_pm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_pm)
reference = _pm.reference


def scores64(f_in: np.ndarray, f_ref: np.ndarray, k: int) -> np.ndarray:
    """The full float64 score matrix [N, Q, R] (same definition as reference())."""
    a = torch.from_numpy(f_in.astype(np.float32)).double()
    r = torch.from_numpy(f_ref.astype(np.float32)).double()
    a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    r = r / r.norm(dim=1, keepdim=True).clamp_min(1e-12)
    pa, pr = F.unfold(a, k), F.unfold(r, k)
    pr = pr / (pr.norm(dim=1, keepdim=True) + 1e-5)
    return torch.einsum("nkq,nkr->nqr", pa, pr).numpy()


@pytest.fixture(scope="module")
def tc_host(tmp_path_factory, nvcc):
    d = tmp_path_factory.mktemp("pm_tc_host")
    exe = d / "pm_tc_host_check"
    r = subprocess.run([nvcc, "-std=c++17", "-O2", "-gencode=arch=compute_90,code=sm_90", "-Xcompiler", "-Wall,-Wextra",
                        "-I", str(REPO), str(HOST_SRC), "-o", str(exe)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return exe, d


def run_tc(tc_host, f_in, f_ref, k, fp16=False, splits=0, variant=None):
    """variant None: the launcher's choice (tc2_match_kernel for padded channels <= 256, else tc_match_kernel)."""
    exe, d = tc_host
    f_in.astype(np.float32).tofile(d / "in.bin")
    f_ref.astype(np.float32).tofile(d / "ref.bin")
    n, c, h, w = f_in.shape
    args = [str(exe), *map(str, (n, c, h, w, f_ref.shape[2], f_ref.shape[3], k, int(fp16))), str(d / "in.bin"),
            str(d / "ref.bin"), str(d / "out.bin"), str(splits)] + ([] if variant is None else [str(variant)])
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stdout + r.stderr)
    shape = (n, h - k + 1, w - k + 1)
    count = int(np.prod(shape))
    raw = np.fromfile(d / "out.bin", dtype=np.int32)
    assert raw.size == 2 * count
    return raw[:count].reshape(shape), raw[count:].view(np.float32).reshape(shape)


def check_tc(got, f_in, f_ref, k, label, tie=FP16_TIE):
    idx, score = got
    widx, wscore, margin = reference(f_in, f_ref, k)
    s64 = scores64(f_in, f_ref, k)
    n, hp, wp = idx.shape
    assert idx.dtype == np.int32 and score.dtype == np.float32
    assert ((idx >= 0) & (idx < s64.shape[2])).all()
    got64 = np.take_along_axis(s64, idx.reshape(n, hp * wp, 1).astype(np.int64), axis=2).reshape(idx.shape)
    diff = idx != widx
    gap = wscore - got64  # >= 0: how much worse the chosen patch is in float64
    err = float(np.abs(score.astype(np.float64) - got64).max())
    print(f"{label}: index mismatches {int(diff.sum())} of {idx.size} (max gap {float(gap.max()):.3g}), "
          f"max score err {err:.3g}")
    assert not (diff & (margin >= tie)).any(), np.argwhere(diff & (margin >= tie))[:5]
    assert float(gap[diff].max(initial=0.0)) < tie
    assert (diff.sum()) <= max(2, idx.size // 50)
    assert err <= SCORE_TOL


# (name, k, F_in shape, F_ref shape): unequal / non-square maps, several column tiles (tw = 64 - (k - 1)) with tail
# tiles on both sides, more than kTcRows = 16 patch rows, channel counts that are not a multiple of 16 or span more
# than one 128-channel stage (RRSR's C = 256 included), batches, and degenerate one-row grids.
CASES = [
    ("unequal_nonsquare_k3", 3, (2, 16, 9, 11), (2, 16, 7, 13)),
    ("wider_than_a_tile_k3", 3, (1, 8, 5, 70), (1, 8, 6, 75)),
    ("taller_than_t_k3", 3, (1, 8, 21, 9), (1, 8, 19, 10)),
    ("wide_and_tall_k3", 3, (1, 5, 19, 130), (1, 5, 7, 140)),
    ("k2_c20", 2, (1, 20, 13, 12), (1, 20, 9, 10)),
    ("k1_c5_wide_ref", 1, (1, 5, 6, 20), (1, 5, 12, 37)),
    ("k1_wider_than_a_tile", 1, (2, 3, 4, 66), (2, 3, 3, 65)),
    ("k3_c70_one_stage", 3, (1, 70, 6, 8), (1, 70, 5, 9)),
    ("k3_c140_two_stages", 3, (1, 140, 6, 8), (1, 140, 5, 9)),
    ("k3_c256", 3, (1, 256, 7, 9), (1, 256, 6, 8)),
    ("k3_one_row_grids", 3, (1, 16, 3, 12), (1, 16, 3, 7)),
    ("k3_c300_v1_kernel", 3, (1, 300, 5, 7), (1, 300, 4, 8)),  # padded channels > 256: tc_match_kernel (v1)
]


@pytest.mark.parametrize("name, k, sin, sref", CASES, ids=[c[0] for c in CASES])
def test_tc_path_matches_reference(tc_host, rng, name, k, sin, sref):
    f_in = rng.standard_normal(sin).astype(np.float32)
    f_ref = rng.standard_normal(sref).astype(np.float32)
    check_tc(run_tc(tc_host, f_in, f_ref, k), f_in, f_ref, k, name)


@pytest.mark.parametrize("name, k, sin, sref", CASES, ids=[c[0] for c in CASES])
def test_fp32_diagonal_path_matches_reference(tc_host, rng, name, k, sin, sref):
    """The FP32 diagonal path (variant 3): the tensor-core path's blocks and scans with FP32 operands and FMAs."""
    f_in = rng.standard_normal(sin).astype(np.float32)
    f_ref = rng.standard_normal(sref).astype(np.float32)
    check_tc(run_tc(tc_host, f_in, f_ref, k, variant=3), f_in, f_ref, k, f"fp32 diagonal {name}", tie=FP32_TIE)


WIDE_CASES = [c for c in CASES if c[0] != "k3_c300_v1_kernel"] + [
    ("k3_more_than_one_wide_tile", 3, (1, 16, 6, 40), (1, 16, 5, 300)),  # 128-pixel reference tiles: 3, a tail one
    ("k1_wide_tile_edge", 1, (1, 8, 4, 20), (1, 8, 3, 129)),
]


@pytest.mark.parametrize("name, k, sin, sref", WIDE_CASES, ids=[c[0] for c in WIDE_CASES])
def test_tc_wide_kernel_matches_reference(tc_host, rng, name, k, sin, sref):
    """v3 (variant 4, Algo::kTensorCoreWide): 64 x 128 correlation tiles from mma.sync fragments."""
    f_in = rng.standard_normal(sin).astype(np.float32)
    f_ref = rng.standard_normal(sref).astype(np.float32)
    check_tc(run_tc(tc_host, f_in, f_ref, k, variant=4), f_in, f_ref, k, f"v3 {name}")


@pytest.mark.parametrize("name, k, sin, sref", [c for c in WIDE_CASES if c[0] in (
    "unequal_nonsquare_k3", "wide_and_tall_k3", "k2_c20", "k1_wider_than_a_tile", "k3_c256",
    "k3_more_than_one_wide_tile")], ids=lambda v: str(v))
def test_tc_kernel_versions_agree_exactly(tc_host, rng, name, k, sin, sref):
    """tc_wide_match_kernel<64> (v2: pipelined, register rows) and <128> (v3: mma.sync fragments, twice as wide
    reference tiles) form the same sums in the same order as tc_match_kernel (v1): a G cell is the FP32 sum of the
    16-channel products in ascending order in each, and the best is a total order, whatever the tiles' widths."""
    f_in = rng.standard_normal(sin).astype(np.float32)
    f_ref = rng.standard_normal(sref).astype(np.float32)
    i1, s1 = run_tc(tc_host, f_in, f_ref, k, variant=1)
    for v in (2, 4):
        iv, sv = run_tc(tc_host, f_in, f_ref, k, variant=v)
        np.testing.assert_array_equal(i1, iv)
        np.testing.assert_array_equal(s1, sv)


@pytest.mark.parametrize("variant", [None, 3, 4])
@pytest.mark.parametrize("splits", [1, 3, 40])
def test_tc_path_split_counts(tc_host, rng, splits, variant):
    """The z-split of the diagonals (and the merge) does not change the result: empty splits included."""
    f_in = rng.standard_normal((2, 16, 9, 11)).astype(np.float32)
    f_ref = rng.standard_normal((2, 16, 7, 13)).astype(np.float32)
    got = run_tc(tc_host, f_in, f_ref, 3, splits=splits, variant=variant)
    check_tc(got, f_in, f_ref, 3, f"splits={splits} variant={variant}", tie=FP32_TIE if variant == 3 else FP16_TIE)
    base = run_tc(tc_host, f_in, f_ref, 3, variant=variant)
    np.testing.assert_array_equal(got[0], base[0])
    np.testing.assert_array_equal(got[1], base[1])


@pytest.mark.parametrize("k", [3, 2])
def test_tc_path_fp16_inputs(tc_host, rng, k):
    f_in = rng.standard_normal((2, 16, 9, 11)).astype(np.float16).astype(np.float32)
    f_ref = rng.standard_normal((2, 16, 7, 13)).astype(np.float16).astype(np.float32)
    check_tc(run_tc(tc_host, f_in, f_ref, k, fp16=True), f_in, f_ref, k, f"fp16 k={k}")


@pytest.mark.parametrize("variant", [None, 3, 4])
@pytest.mark.parametrize("splits", [0, 1])
@pytest.mark.parametrize("k, reps_x", [(3, 3), (2, 3), (1, 3), (3, 19), (1, 19), (3, 35)])
def test_tc_path_exact_ties_pick_the_lowest_index(tc_host, rng, k, reps_x, splits, variant):
    """Periodic reference (every patch recurs): equal patches get bit-equal scores, the lowest index must win --
    within a row scan, across diagonals (splits=1: one block walks all of them), across reference column tiles
    (reps_x = 19: 76 columns, two 64-pixel tiles; 35: 140 columns, two of v3's 128-pixel tiles) and across the
    z-splits' merge (splits=0: the kernel's own many splits)."""
    block = rng.standard_normal((1, 8, 4, 4)).astype(np.float32)
    f_ref = np.tile(block, (1, 1, 3, reps_x))  # 12 x 4 reps_x, period 4
    f_in = np.ascontiguousarray(f_ref[:, :, 5:11, 3:10])
    idx, score = run_tc(tc_host, f_in, f_ref, k, splits=splits, variant=variant)
    widx, wscore, _ = reference(f_in, f_ref, k)
    wrp = 4 * reps_x - k + 1
    ry, rx = np.divmod(idx, wrp)
    assert (ry < 4).all() and (rx < 4).all(), "a later copy of a duplicated patch won"
    np.testing.assert_array_equal(idx, widx)
    assert float(np.abs(score - wscore).max()) <= SCORE_TOL
    qy, qx = np.meshgrid(np.arange(idx.shape[1]), np.arange(idx.shape[2]), indexing="ij")
    np.testing.assert_array_equal(ry[0], (qy + 5) % 4)
    np.testing.assert_array_equal(rx[0], (qx + 3) % 4)


def test_tc_workspace_is_about_half_of_the_simt_one(tc_host):
    """At RRSR's real size (C = 256, 270 x 480 LR maps) the FP16 NHWC path needs at most ~55% of the SIMT scratch,
    and cuda_workspace_bytes covers every path kAuto can pick (the FP32 diagonal one once GPU-verified)."""
    exe, _ = tc_host
    for shape in [(1, 256, 270, 480, 270, 480, 3), (2, 64, 60, 90, 50, 100, 3), (1, 5, 6, 20, 12, 37, 1)]:
        r = subprocess.run([str(exe), *map(str, shape)], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr
        f = r.stdout.split()
        simt, tc, total, fp32diag, verified = int(f[1]), int(f[3]), int(f[5]), int(f[9]), int(f[11])
        # the FP32 diagonal path's scratch counts once kAuto can pick it (kDiagonalFp32Verified)
        assert total == max(simt, tc, fp32diag if verified else 0), r.stdout
        if shape[1] == 256:
            assert tc <= 0.55 * simt, r.stdout
