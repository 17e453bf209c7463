"""RrsrRefAwareSelection in ONNX Runtime (CPU kernel of librrsr_ort_ops.so) against the PyTorch reference."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rrsr_model.ops.ras import ras_reference


def reference(args, valid_size=None) -> np.ndarray:
    t = [torch.from_numpy(np.ascontiguousarray(a)) for a in args]
    vs = None if valid_size is None else torch.from_numpy(valid_size)
    return ras_reference(*t, valid_size=vs).numpy()


# (name, n, cx, cr, h, w, experts, c_out)
CASES = [
    ("rrsr_like_cr64", 2, 64, 64, 9, 11, 16, 64),
    ("small_channels", 2, 8, 12, 7, 5, 4, 6),
    ("one_expert_tail_tiles", 1, 3, 5, 13, 17, 1, 70),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_ras_fp32_matches_reference(ort_ops, make_ras_inputs, rng, case):
    _, n, cx, cr, h, w, e, c_out = case
    args = make_ras_inputs(rng, n, cx, cr, h, w, e, c_out)
    got = ort_ops.ras(*args)
    want = reference(args)
    assert got.shape == (n, c_out, h, w) and got.dtype == np.float32
    err = float(np.abs(got - want).max())
    print(f"{case[0]}: max abs err {err:.3g}")
    assert err <= 1e-4


@pytest.mark.parametrize("cr", [256, 128])
def test_ras_rrsr_reference_channels(ort_ops, make_ras_inputs, rng, cr):
    """The other two RRSR stages: Cx = 64, Cr = 256 / 128, 16 experts, C_out = 64 (small maps)."""
    args = make_ras_inputs(rng, 1, 64, cr, 6, 7, 16, 64)
    err = float(np.abs(ort_ops.ras(*args) - reference(args)).max())
    print(f"Cr={cr}: max abs err {err:.3g}")
    assert err <= 1e-4


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
@pytest.mark.parametrize("valid", [(5, 7), (1, 1), (9, 11), (40, -3)])
def test_ras_valid_size(ort_ops, make_ras_inputs, rng, dtype, valid):
    """valid_size restricts the mean to the top-left region; values are clamped to [1, H] x [1, W]."""
    args = make_ras_inputs(rng, 2, 8, 8, 9, 11, 4, 8)
    vs = np.array(valid, dtype=dtype)
    got = ort_ops.ras(*args, valid_size=vs)
    want = reference(args, vs.astype(np.int64))
    err = float(np.abs(got - want).max())
    print(f"valid_size={valid} ({np.dtype(dtype).name}): max abs err {err:.3g}")
    assert err <= 1e-4
    if valid == (9, 11):  # the whole map: same as no valid_size
        np.testing.assert_allclose(got, ort_ops.ras(*args), rtol=0, atol=1e-6)


def test_ras_valid_size_changes_result(ort_ops, make_ras_inputs, rng):
    args = make_ras_inputs(rng, 1, 8, 8, 9, 11, 4, 8)
    full = ort_ops.ras(*args)
    part = ort_ops.ras(*args, valid_size=np.array([4, 5], np.int64))
    assert float(np.abs(full - part).max()) > 1e-3


@pytest.mark.parametrize("gate_dtype", [np.float32, np.float16])
def test_ras_fp16_features(ort_ops, make_ras_inputs, rng, gate_dtype):
    """FP16 X/R/W/B, routing/SE weights in FP32 or FP16; FP32 accumulation inside."""
    args = make_ras_inputs(rng, 2, 16, 16, 9, 11, 8, 16)
    feat = [a.astype(np.float16) for a in args[:4]]
    gate = [a.astype(gate_dtype) for a in args[4:]]
    got = ort_ops.ras(*feat, *gate)
    assert got.dtype == np.float16
    exact = reference([a.astype(np.float32) for a in feat + gate])
    full = reference(args)
    err_exact = float(np.abs(got.astype(np.float32) - exact).max())
    err_full = float(np.abs(got.astype(np.float32) - full).max())
    scale = float(np.abs(full).max())
    print(f"fp16 features, {np.dtype(gate_dtype).name} gates: max abs err vs fp32 ref on the rounded inputs "
          f"{err_exact:.3g}, vs fp32 ref on fp32 inputs {err_full:.3g} (max |y| {scale:.3g})")
    assert err_exact <= scale * 2.0 ** -11 + 1e-3
    assert err_full <= 2e-2 * max(scale, 1.0)


def test_ras_deterministic_across_thread_counts(ort_ops, make_ras_inputs, rng):
    args = make_ras_inputs(rng, 2, 16, 16, 12, 13, 4, 16)
    np.testing.assert_array_equal(ort_ops.ras(*args, threads=1), ort_ops.ras(*args, threads=3))
