"""The CUDA kernels' device code, run on the CPU (tests/plugins/cuda_host_check.cu), against the PyTorch references.

No GPU is needed: the program includes mdcn.cu / ras.cu and steps through the tiled kernel's phases block by block
and thread by thread. This checks the samplers, index arithmetic, tiling and epilogues of the code the GPU runs;
only the hardware side (launches, shared-memory races, the mean kernel's block reduction) is left to the GPU machine.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from rrsr_model.ops.mdcn import mdcn_reference
from rrsr_model.ops.ras import ras_reference

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def host_check(tmp_path_factory, nvcc) -> Path:
    exe = tmp_path_factory.mktemp("cuda_host_check") / "cuda_host_check"
    # PTX only for the (unused) device side: skips ptxas, the host code is what runs
    cmd = [nvcc, "-std=c++17", "-O1", "--expt-relaxed-constexpr", "-gencode=arch=compute_90,code=compute_90",
           str(HERE / "cuda_host_check.cu"), "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return exe


def _run(exe: Path, op: str, d: Path) -> None:
    r = subprocess.run([str(exe), op, str(d)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


MDCN_CASES = [
    # name, n, c, h, w, c_out, k, strides, pads, dilations, group, offset_group, bias, mask, offset_scale
    ("rrsr_like", 2, 16, 9, 11, 16, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, 8, True, True, 2.0),
    ("cout_two_row_tiles_pixel_tail", 1, 8, 9, 8, 70, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, 2, True, True, 2.0),
    ("groups_stride2", 2, 12, 11, 10, 9, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 3, 2, True, True, 3.0),
    ("dilation_asym", 1, 6, 12, 13, 4, (3, 2), (2, 1), (1, 0, 2, 3), (2, 3), 2, 3, False, True, 2.0),
    ("large_offsets_no_bias_no_mask", 1, 8, 7, 9, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, 4, False, False,
     15.0),
]


# Extra geometries for the tensor-core kernel (FP16 only): several 16-channel K chunks with a tail, C_out / group
# above 256 (two row tiles of the largest block), a 1x1 and a 5x5 kernel.
MDCN_TC_CASES = [
    ("tc_40ch_cout_70", 1, 40, 6, 9, 70, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, 5, True, True, 2.0),
    ("tc_cout_260_pixel_tail", 1, 8, 5, 13, 260, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, 1, True, True, 2.0),
    ("tc_1x1_groups", 2, 32, 7, 5, 48, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 2, 4, False, True, 1.0),
    ("tc_5x5_stride2", 1, 16, 11, 12, 24, (5, 5), (2, 2), (2, 2, 2, 2), (1, 1), 1, 2, True, False, 3.0),
]

# every geometry in FP32; FP16 storage (with FP32 or FP16 offsets) on two of them; the tensor-core kernel (FP16
# only) on those two and its own geometries
MDCN_PARAMS = [(c, "fp32") for c in MDCN_CASES] + [
    (c, t) for c in MDCN_CASES if c[0] in ("rrsr_like", "groups_stride2") for t in ("fp16_fp32off", "fp16_fp16off")]
MDCN_PARAMS += [(c, "tc_" + t) for c in MDCN_CASES + MDCN_TC_CASES
                if c[0] in ("rrsr_like", "groups_stride2") or c[0].startswith("tc_")
                for t in ("fp16_fp32off", "fp16_fp16off")]


def _mdcn_inputs(tmp_path, case, types):
    """Writes the case's inputs and meta.txt; -> (arrays, output dims, output dtype)."""
    name, n, c, h, w, c_out, k, st, pads, dil, group, og, has_b, has_m, scale = case
    rng = np.random.default_rng(7)
    kh, kw = k
    ho = (h + pads[0] + pads[2] - (dil[0] * (kh - 1) + 1)) // st[0] + 1
    wo = (w + pads[1] + pads[3] - (dil[1] * (kw - 1) + 1)) // st[1] + 1
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((c_out, c // group, kh, kw)) / np.sqrt(c // group * kh * kw)).astype(np.float32)
    off = (rng.standard_normal((n, 2 * og * kh * kw, ho, wo)) * scale).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32) if has_b else None
    m = rng.random((n, og * kh * kw, ho, wo)).astype(np.float32) if has_m else None
    tdt = np.float16 if types.startswith("fp16") else np.float32
    odt = np.float16 if types == "fp16_fp16off" else np.float32
    x, wt = x.astype(tdt), wt.astype(tdt)
    b = b.astype(tdt) if b is not None else None
    off = off.astype(odt)
    m = m.astype(odt) if m is not None else None
    for fname, arr in (("x", x), ("w", wt), ("off", off), ("b", b), ("m", m)):
        if arr is not None:
            np.ascontiguousarray(arr).tofile(tmp_path / f"{fname}.bin")
    meta = [n, c, h, w, c_out, kh, kw, ho, wo, st[0], st[1], pads[0], pads[1], dil[0], dil[1], group, og,
            int(has_b), int(has_m), int(tdt == np.float16), int(odt == np.float16)]
    (tmp_path / "meta.txt").write_text(" ".join(map(str, meta)))
    return (x, wt, off, b, m), (n, c_out, ho, wo), tdt


def _mdcn_error(tmp_path, case, arrays, dims, tdt):
    """-> (max abs error of y.bin vs the FP32 reference, tolerance)."""
    _, n, c, h, w, c_out, k, st, pads, dil, group, og, *_ = case
    got = np.fromfile(tmp_path / "y.bin", dtype=tdt).reshape(dims).astype(np.float32)
    f32 = lambda a: None if a is None else torch.from_numpy(a.astype(np.float32))  # noqa: E731
    want = mdcn_reference(*(f32(a) for a in arrays), strides=st, pads=pads, dilations=dil, group=group,
                          offset_group=og).numpy()
    err = float(np.abs(got - want).max())
    tol = 1e-4 if tdt == np.float32 else float(np.abs(want).max()) * 2.0 ** -11 + 1e-3
    return err, tol


@pytest.mark.parametrize("case, types", MDCN_PARAMS, ids=[f"{c[0]}-{t}" for c, t in MDCN_PARAMS])
def test_cuda_mdcn_device_code(host_check, tmp_path, case, types):
    tensor_core = types.startswith("tc_")
    types = types.removeprefix("tc_")
    arrays, dims, tdt = _mdcn_inputs(tmp_path, case, types)
    _run(host_check, "mdcn_tc" if tensor_core else "mdcn", tmp_path)
    err, tol = _mdcn_error(tmp_path, case, arrays, dims, tdt)
    print(f"{case[0]} {types}{' tensor-core' if tensor_core else ''}: max abs err {err:.3g} (tol {tol:.3g})")
    assert err <= tol


# The vec8 tensor-core kernel (mdcn_vec8.cuh): channel counts that are multiples of 8 per group and offset group.
# RRSR's 64-channel stage (18 K chunks), chunks that span taps (16 channels per group), C_out tails, groups with
# stride 2, dilation with asymmetric pads, a 1x1 kernel; every tile, and split-K with uneven and empty splits.
MDCN_VEC8_CASES = [
    ("vec8_rrsr_64", 1, 64, 9, 11, 64, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, 8, True, True, 2.0),
    ("vec8_cout_70_span_taps", 2, 16, 7, 9, 70, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, 2, True, True, 2.0),
    ("vec8_groups_stride2", 1, 32, 11, 10, 24, (3, 3), (2, 2), (1, 1, 1, 1), (1, 1), 2, 2, True, True, 3.0),
    ("vec8_dilation_asym", 1, 16, 12, 13, 8, (3, 2), (2, 1), (1, 0, 2, 3), (2, 3), 1, 2, False, True, 2.0),
    ("vec8_1x1_no_mask", 2, 24, 7, 5, 40, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1, 3, True, False, 1.0),
]
VEC8_TILES = [(64, 64, 1), (64, 128, 1), (128, 64, 1), (128, 128, 1), (256, 64, 1), (64, 64, 3), (128, 64, 4)]
VEC8_PARAMS = [(c, t, "fp16_fp32off") for c in MDCN_VEC8_CASES for t in VEC8_TILES[:1] + VEC8_TILES[5:]]
VEC8_PARAMS += [(MDCN_VEC8_CASES[0], t, "fp16_fp32off") for t in VEC8_TILES[1:5]]
VEC8_PARAMS += [(MDCN_VEC8_CASES[1], t, "fp16_fp16off") for t in (VEC8_TILES[3], VEC8_TILES[5])]
# the smallest image the octet kernel takes: its 2 x 2 sample window is the whole image (every corner clamped)
VEC8_PARAMS += [(("vec8_tiny_2x2", 2, 16, 2, 2, 16, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, 2, True, True, 1.5),
                 VEC8_TILES[0], "fp16_fp32off")]
# the register-B variant (mdcn_vec8_regb.cuh): both tiles on every geometry (C_out 70 and 40: row tiles past
# C_out / group, pixel tails inside a warp's 8-pixel groups, K' tails inside a chunk), split-K, FP16 offsets
REGB_TILES = [(64, 128, 1, "regb"), (64, 256, 1, "regb"), (64, 128, 3, "regb")]
VEC8_PARAMS += [(c, t, "fp16_fp32off") for c in MDCN_VEC8_CASES for t in REGB_TILES[:2]]
VEC8_PARAMS += [(MDCN_VEC8_CASES[0], REGB_TILES[2], "fp16_fp32off"), (MDCN_VEC8_CASES[1], REGB_TILES[2], "fp16_fp16off")]
# the three-stage K pipeline: every tile; splits of two, one and no chunks (5 chunks in 3 or 4 splits) and the 1x1
# case's single chunk take its short prologue paths
STAGE3_TILES = [(64, 64, 1, "stages3"), (64, 128, 1, "stages3"), (128, 64, 1, "stages3"), (128, 128, 1, "stages3"),
                (256, 64, 1, "stages3"), (64, 64, 3, "stages3"), (128, 64, 4, "stages3")]
VEC8_PARAMS += [(c, STAGE3_TILES[0], "fp16_fp32off") for c in MDCN_VEC8_CASES]
VEC8_PARAMS += [(MDCN_VEC8_CASES[0], t, "fp16_fp32off") for t in STAGE3_TILES[1:]]
VEC8_PARAMS += [(MDCN_VEC8_CASES[1], t, "fp16_fp16off") for t in STAGE3_TILES[5:]]
# the column-slab variant: im2col into the workspace, then the GEMM over it; every geometry, every tile, splits
SLAB_TILES = [(64, 64, 1, "slab"), (64, 128, 1, "slab"), (128, 64, 1, "slab"), (128, 128, 1, "slab"),
              (256, 64, 1, "slab"), (64, 64, 3, "slab"), (128, 64, 4, "slab")]
VEC8_PARAMS += [(c, SLAB_TILES[0], "fp16_fp32off") for c in MDCN_VEC8_CASES]
VEC8_PARAMS += [(MDCN_VEC8_CASES[0], t, "fp16_fp32off") for t in SLAB_TILES[1:]]
VEC8_PARAMS += [(MDCN_VEC8_CASES[1], t, "fp16_fp16off") for t in SLAB_TILES[5:]]
# the slab in bands (slab::launch's loop, as large problems run): 2 images x 667 pixels in bands of 256 or 512
# pixels (the last one partial), tiles that end inside or at a band's end, split-K, FP16 offsets; a band past the
# plane is the whole plane
BAND_CASE = ("vec8_bands", 2, 16, 23, 29, 40, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1, 2, True, True, 2.0)
VEC8_PARAMS += [(BAND_CASE, (64, 64, 1, "slab256"), "fp16_fp32off"), (BAND_CASE, (64, 128, 3, "slab256"), "fp16_fp16off"),
                (BAND_CASE, (128, 64, 1, "slab512"), "fp16_fp32off"), (MDCN_VEC8_CASES[0], (64, 64, 1, "slab256"),
                                                                         "fp16_fp32off")]


@pytest.mark.parametrize("case, tile, types", VEC8_PARAMS,
                         ids=[f"{c[0]}-{'x'.join(map(str, t))}-{ty}" for c, t, ty in VEC8_PARAMS])
def test_cuda_mdcn_vec8_device_code(host_check, tmp_path, case, tile, types):
    arrays, dims, tdt = _mdcn_inputs(tmp_path, case, types)
    r = subprocess.run([str(host_check), "mdcn_vec8", str(tmp_path), *map(str, tile)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    err, tol = _mdcn_error(tmp_path, case, arrays, dims, tdt)
    print(f"{case[0]} {types} tile {tile}: max abs err {err:.3g} (tol {tol:.3g})")
    assert err <= tol


def test_cuda_mdcn_variants_apply_where_they_can(host_check):
    # mdcn::Variant (the TensorRT plugin's custom tactics) on the launcher's own choice for RRSR's stages: each
    # variant changes only what it names, only where the chosen tile allows it, and always names a kernel that
    # exists; cuda_variants offers exactly the ones that can differ (none for FP32), by default the GPU-verified ones
    r = subprocess.run([str(host_check), "variants"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    rows, offered = {}, {}
    for line in r.stdout.split("\n"):
        f = line.split()
        if f and f[0] == "offered":
            fp16, fp32, verified = line.split(" ", 2)[2].split("|")
            offered[int(f[1])] = (fp16.split(), fp32.split(), verified.split())
        elif f:
            ch, size, sms, v, bm, bn, splits, regb, stages, min_blocks, slab, ok = map(int, f)
            rows[ch, size, sms, v] = dict(bm=bm, bn=bn, splits=splits, regb=regb, stages=stages, min_blocks=min_blocks,
                                          slab=slab, ok=ok)
    # all variants that can differ, none for FP32; GPU-verified ones only by default (all passed on an H200); not
    # 3 (two blocks per SM), which is the launcher's own choice for the 256x64 tile
    assert offered == {64: (["1", "2", "4"], [], ["1", "2", "4"]), 128: (["1", "4"], [], ["1", "4"]),
                       256: (["1", "4"], [], ["1", "4"])}
    for (ch, size, sms, v), c in rows.items():
        base = rows[ch, size, sms, 0]
        assert c["ok"] == 1, (ch, size, sms, v, c)
        changed = {k for k in c if c[k] != base[k]}
        capped = base["min_blocks"] == 2  # the launcher's 256x64 tile; the other variants run their own rule
        assert capped == ((base["bm"], base["bn"]) == (256, 64)), (ch, size, sms, base)
        if v == 1:
            assert changed == {"stages"} | ({"min_blocks"} if capped else set()) and c["stages"] == 3, (ch, size, c)
        elif v == 2:  # register-B on the 64-row tile (64x128), else the default
            assert changed == ({"regb", "bn"} - ({"bn"} if base["bn"] == 128 else set()) if base["bm"] == 64
                               else set()), (ch, size, sms, c, base)
        elif v == 3:  # two blocks per SM on the 256x64 tile: the default already
            assert changed == set(), (ch, size, c)
        elif v == 4:  # the column slab everywhere (in bands where the columns exceed 32 MiB)
            assert changed == {"slab"} | ({"min_blocks"} if capped else set()), (ch, size, sms, c)
        elif v == 10:  # TileChoice stages = 3: the three-stage kernel with its own register rule
            assert c["stages"] == 3 and c["min_blocks"] == 0 and c["regb"] == 0, (ch, size, sms, c)
        elif v == 11:  # TileChoice 128x64: that tile with its own register rule
            assert (c["bm"], c["bn"], c["min_blocks"]) == (128, 64, 0), (ch, size, sms, c)
    assert rows[64, 160, 132, 2]["regb"] == 1 and rows[256, 160, 132, 3]["min_blocks"] == 2  # RRSR's 160x160
    assert rows[64, 40, 132, 0]["bn"] == 64 and rows[64, 40, 132, 2]["bn"] == 128  # small grid: regb's own tile
    assert rows[64, 160, 132, 4]["slab"] == 1 and rows[256, 160, 132, 4]["slab"] == 1
    assert rows[256, 40, 132, 0]["bm"] == 128 and rows[256, 40, 132, 3] == rows[256, 40, 132, 0]  # not 256x64


def test_cuda_window_sample_matches_bilinear_sample(host_check):
    # the octet kernels sample a 2x2 window inside the image (one address, fixed neighbours); its weights must be
    # bilinear_sample's, bit for bit, on the corners they move to, at every border, NaN and overflow
    r = subprocess.run([str(host_check), "window"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ", 0 mismatches" in r.stdout and int(r.stdout.split()[1]) > 100_000, r.stdout


def test_cuda_mdcn_vec8_slab_band_must_be_aligned(host_check, tmp_path):
    # a band that is not a multiple of 256 pixels below the plane would leave GEMM tiles straddling two bands
    _mdcn_inputs(tmp_path, BAND_CASE, "fp16_fp32off")
    r = subprocess.run([str(host_check), "mdcn_vec8", str(tmp_path), "64", "64", "1", "slab300"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "band 300: not a multiple of 256" in r.stderr


def test_cuda_mdcn_vec8_refuses_unaligned_channels(host_check, tmp_path):
    # 16 channels in 8 offset groups: a 2-channel group cannot be one 16-byte vector
    _mdcn_inputs(tmp_path, MDCN_CASES[0], "fp16_fp32off")
    r = subprocess.run([str(host_check), "mdcn_vec8", str(tmp_path), "64", "64", "1"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "multiples of 8" in r.stderr


RAS_CASES = [
    # name, n, cx, cr, h, w, experts, c_out, valid_size (None / (rows, cols, dtype))
    ("rrsr_like", 2, 16, 16, 9, 11, 16, 64, None),
    ("cout_70_valid_int32", 1, 8, 12, 7, 10, 4, 70, (5, 6, np.int32)),
    ("valid_int64_clamped", 2, 4, 4, 6, 5, 2, 8, (40, 0, np.int64)),
]


@pytest.mark.parametrize("case", RAS_CASES, ids=[c[0] for c in RAS_CASES])
@pytest.mark.parametrize("types", ["fp32", "fp16"])
def test_cuda_ras_device_code(host_check, tmp_path, case, types):
    name, n, cx, cr, h, w, e, c_out, valid = case
    rng = np.random.default_rng(11)
    c = cx + cr
    args = [rng.standard_normal((n, cx, h, w)), rng.standard_normal((n, cr, h, w)),
            rng.standard_normal((e, c_out, c, 3, 3)) / np.sqrt(9 * c), rng.standard_normal((e, c_out)) * 0.1,
            rng.standard_normal((e, c)) / np.sqrt(c), rng.standard_normal(e) * 0.1,
            rng.standard_normal((c, c, 1, 1)) / np.sqrt(c), rng.standard_normal(c) * 0.1,
            rng.standard_normal((c_out, c, 1, 1)) / np.sqrt(c), rng.standard_normal(c_out) * 0.1]
    dt = np.float16 if types == "fp16" else np.float32
    args = [a.astype(dt) for a in args]
    for fname, arr in zip(["x", "r", "w", "b", "rw", "rb", "s1w", "s1b", "s2w", "s2b"], args):
        np.ascontiguousarray(arr).tofile(tmp_path / f"{fname}.bin")
    vs = None
    if valid is not None:
        vs = np.array(valid[:2], dtype=valid[2])
        vs.tofile(tmp_path / "vs.bin")
    meta = [n, cx, cr, h, w, e, c_out, int(vs is not None), int(vs is not None and vs.dtype == np.int64),
            int(dt == np.float16), int(dt == np.float16)]
    (tmp_path / "meta.txt").write_text(" ".join(map(str, meta)))
    _run(host_check, "ras", tmp_path)
    got = np.fromfile(tmp_path / "y.bin", dtype=dt).reshape(n, c_out, h, w).astype(np.float32)
    want = ras_reference(*[torch.from_numpy(a.astype(np.float32)) for a in args],
                         valid_size=None if vs is None else torch.from_numpy(vs.astype(np.int64))).numpy()
    err = float(np.abs(got - want).max())
    tol = 1e-4 if dt == np.float32 else float(np.abs(want).max()) * 2.0 ** -11 + 1e-3
    print(f"{name} {types}: max abs err {err:.3g} (tol {tol:.3g})")
    assert err <= tol
