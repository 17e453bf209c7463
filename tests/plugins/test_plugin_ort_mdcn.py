"""RrsrModulatedDeformConv in ONNX Runtime (CPU kernel of librrsr_ort_ops.so) against the PyTorch reference,
ONNX's own DeformConv node test vectors and ORT's builtin DeformConv."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rrsr_model.ops.mdcn import mdcn_reference


def reference(x, w, off, b, m, attrs) -> np.ndarray:
    t = lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return mdcn_reference(t(x), t(w), t(off), t(b), t(m), strides=attrs["strides"], pads=attrs["pads"],
                          dilations=attrs["dilations"], group=attrs["group"],
                          offset_group=attrs["offset_group"]).numpy()


# (name, n, c, h, w, c_out, geometry kwargs)
CASES = [
    # RRSR-like: 3x3, stride 1, pad 1, offset_group 8
    ("rrsr_like", 2, 16, 9, 11, 16, dict(offset_group=8)),
    ("rrsr_like_cout_gt_tile", 1, 16, 7, 5, 40, dict(offset_group=8)),
    ("large_offsets_outside", 2, 8, 9, 11, 6, dict(offset_group=2, offset_scale=12.0)),
    ("groups", 2, 12, 8, 10, 9, dict(group=3, offset_group=2)),
    ("groups_eq_offset_groups", 1, 8, 6, 7, 8, dict(group=4, offset_group=4)),
    ("stride2", 2, 8, 11, 12, 8, dict(strides=(2, 2), offset_group=4)),
    ("stride_2x1_asym_pad", 1, 6, 9, 8, 5, dict(strides=(2, 1), pads=(0, 2, 1, 0), offset_group=3)),
    ("dilation2", 1, 8, 12, 10, 6, dict(dilations=(2, 2), pads=(2, 2, 2, 2), offset_group=2)),
    ("dilation_2x3_kernel_3x2", 1, 4, 12, 13, 5, dict(k=(3, 2), dilations=(2, 3), pads=(1, 0, 2, 3))),
    ("kernel_1x1", 2, 6, 5, 5, 4, dict(k=(1, 1), pads=(0, 0, 0, 0), offset_group=3)),
    ("no_bias_no_mask", 2, 8, 7, 9, 8, dict(offset_group=2, bias=False, mask=False)),
    ("no_bias", 1, 8, 7, 9, 8, dict(offset_group=2, bias=False)),
    ("no_mask", 1, 8, 7, 9, 8, dict(offset_group=2, mask=False)),
    ("batch0_tail_tiles", 3, 4, 13, 17, 3, dict()),  # 221 pixels: a partial last tile
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_mdcn_fp32_matches_reference(ort_ops, make_mdcn_inputs, rng, case):
    _, n, c, h, w, c_out, geo = case
    x, wt, off, b, m, attrs = make_mdcn_inputs(rng, n, c, h, w, c_out, **geo)
    got = ort_ops.mdcn(x, wt, off, b, m, **attrs)
    want = reference(x, wt, off, b, m, attrs)
    assert got.shape == want.shape and got.dtype == np.float32
    err = float(np.abs(got - want).max())
    print(f"{case[0]}: max abs err {err:.3g}")
    assert err <= 1e-4


def test_mdcn_samples_outside_image_are_zero(ort_ops, make_mdcn_inputs, rng):
    """Offsets that push every tap beyond the image (and NaN/inf-free huge values) give bias only."""
    x, wt, off, b, m, attrs = make_mdcn_inputs(rng, 1, 4, 5, 6, 3, offset_group=2)
    off = np.full_like(off, 1e6)
    got = ort_ops.mdcn(x, wt, off, b, m, **attrs)
    np.testing.assert_array_equal(got, np.broadcast_to(b.reshape(1, -1, 1, 1), got.shape))


def test_mdcn_rrsr_stage_shape(ort_ops, make_mdcn_inputs, rng):
    """One real RRSR stage geometry (64 channels, offset_group 8), at a small map."""
    x, wt, off, b, m, attrs = make_mdcn_inputs(rng, 1, 64, 24, 20, 64, offset_group=8, offset_scale=4.0)
    got = ort_ops.mdcn(x, wt, off, b, m, **attrs)
    err = float(np.abs(got - reference(x, wt, off, b, m, attrs)).max())
    print(f"64ch 24x20: max abs err {err:.3g}")
    assert err <= 1e-4


def test_mdcn_deterministic_across_thread_counts(ort_ops, make_mdcn_inputs, rng):
    x, wt, off, b, m, attrs = make_mdcn_inputs(rng, 2, 16, 12, 13, 16, offset_group=8)
    one = ort_ops.mdcn(x, wt, off, b, m, threads=1, **attrs)
    two = ort_ops.mdcn(x, wt, off, b, m, threads=2, **attrs)
    four = ort_ops.mdcn(x, wt, off, b, m, threads=4, **attrs)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, four)


@pytest.mark.parametrize("offset_dtype", [np.float32, np.float16])
def test_mdcn_fp16_features(ort_ops, make_mdcn_inputs, rng, offset_dtype):
    """FP16 X/W/B (FP32 or FP16 offsets/mask): FP32 coordinates and accumulation inside."""
    x, wt, off, b, m, attrs = make_mdcn_inputs(rng, 2, 16, 9, 11, 16, offset_group=8, offset_scale=3.0)
    h16 = [a.astype(np.float16) if a is not None else None for a in (x, wt, b)]
    o = off.astype(offset_dtype)
    mk = m.astype(offset_dtype)
    got = ort_ops.mdcn(h16[0], h16[1], o, h16[2], mk, **attrs)
    assert got.dtype == np.float16
    # Same rounded inputs in FP32: only the output rounding and summation order differ.
    exact = reference(h16[0].astype(np.float32), h16[1].astype(np.float32), o.astype(np.float32),
                      h16[2].astype(np.float32), mk.astype(np.float32), attrs)
    full = reference(x, wt, off, b, m, attrs)
    err_exact = float(np.abs(got.astype(np.float32) - exact).max())
    err_full = float(np.abs(got.astype(np.float32) - full).max())
    scale = float(np.abs(full).max())
    print(f"fp16 X/W/B, {np.dtype(offset_dtype).name} offsets: max abs err vs fp32 ref on the fp16-rounded "
          f"inputs {err_exact:.3g}, vs fp32 ref on the fp32 inputs {err_full:.3g} (max |y| {scale:.3g})")
    # one FP16 rounding of the output (2^-11 relative) plus FP32 summation-order noise
    assert err_exact <= scale * 2.0 ** -11 + 1e-3
    assert err_full <= 2e-2 * max(scale, 1.0)


def test_mdcn_fp32_coordinates_far_from_origin(ort_ops):
    """Samples at x = 600.3 ... 758.3 over an alternating 0/1 pattern: FP32 coordinates give 0.3/0.7; coordinates in
    FP16 (spacing 0.5 px there) would give 0.5, an error of 0.2. Features FP16, offsets FP32, as RRSR's 4x stage."""
    h, w, c = 2, 760, 2
    x = np.zeros((1, c, h, w), np.float32)
    x[..., 1::2] = 1.0
    wt = np.zeros((1, c, 1, 1), np.float32)
    wt[0, 0] = 1.0
    off = np.zeros((1, 2, h, w), np.float32)
    off[:, 1] = 0.3  # dx
    attrs = dict(strides=[1, 1], pads=[0, 0, 0, 0], dilations=[1, 1], group=1, offset_group=1)
    got = ort_ops.mdcn(x.astype(np.float16), wt.astype(np.float16), off, **attrs).astype(np.float32)
    want = reference(x, wt, off, None, None, attrs)
    err = float(np.abs(got - want)[..., 600:w - 1].max())
    print(f"far-from-origin fractional offsets, fp16 features: max abs err {err:.3g}")
    assert err <= 1e-3  # FP16 rounding of 0.3 / 0.7; FP16 coordinates would be off by 0.2


# ---------------------------------------------------------------------------------------------------------------
# ONNX's own DeformConv node test vectors, rewritten to the rrsr op.

def _onnx_deform_conv_cases():
    """(name, model, inputs, outputs) of the DeformConv node tests the onnx package ships: the data directories when
    present, else the same vectors from onnx.backend.test.case (what generates those directories)."""
    import glob
    import os

    import onnx
    from onnx import numpy_helper

    data_root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")
    dirs = sorted(glob.glob(os.path.join(data_root, "test_*deform_conv*")))
    cases = []
    for d in dirs:
        model = onnx.load(os.path.join(d, "model.onnx"))
        ins = [numpy_helper.to_array(onnx.load_tensor(p))
               for p in sorted(glob.glob(os.path.join(d, "test_data_set_0", "input_*.pb")))]
        outs = [numpy_helper.to_array(onnx.load_tensor(p))
                for p in sorted(glob.glob(os.path.join(d, "test_data_set_0", "output_*.pb")))]
        cases.append((os.path.basename(d), model, ins, outs))
    if cases:
        return cases
    import warnings

    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():  # collecting imports every op's case module; some warn about their own data
        warnings.simplefilter("ignore")
        testcases = collect_testcases("DeformConv")
    for tc in testcases:
        ins, outs = tc.data_sets[0]
        cases.append((tc.name, tc.model, list(ins), list(outs)))
    return cases


def test_mdcn_passes_onnx_deform_conv_node_tests(ort_ops):
    import onnx

    cases = _onnx_deform_conv_cases()
    assert cases, "the onnx package ships no DeformConv node tests"
    spec = ort_ops.mdcn_spec
    allowed = {a["name"] for a in spec["attributes"]}
    for name, model, ins, outs in cases:
        m = onnx.ModelProto()
        m.CopyFrom(model)
        node = m.graph.node[0]
        assert node.op_type == "DeformConv"
        node.op_type = spec["op_type"]
        node.domain = spec["domain"]
        # kernel_shape is implied by W in the rrsr op (ONNX allows it to be omitted too); keep the rest
        kept = [a for a in node.attribute if a.name in allowed]
        assert {a.name for a in node.attribute} - allowed <= {"kernel_shape"}, name
        del node.attribute[:]
        node.attribute.extend(kept)
        m.opset_import.append(onnx.helper.make_opsetid(spec["domain"], spec["since_version"]))
        sess = ort_ops.session(m)
        feeds = {i.name: a for i, a in zip(m.graph.input, ins)}
        got = sess.run(None, feeds)
        for g, want in zip(got, outs):
            print(f"{name}: max abs err {float(np.abs(g - want).max()):.3g}")
            np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-5, err_msg=name)


def test_mdcn_matches_ort_builtin_deform_conv(ort_ops, make_mdcn_inputs, rng):
    """Independent cross-check: ORT's own DeformConv (opset 19) on the same inputs."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    x, wt, off, b, m, attrs = make_mdcn_inputs(rng, 2, 8, 9, 11, 8, offset_group=4, strides=(2, 1),
                                               dilations=(1, 2), pads=(1, 2, 1, 2))
    names = ["X", "W", "offset", "B", "mask"]
    node = helper.make_node("DeformConv", names, ["Y"], kernel_shape=[3, 3], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape))
                                            for n, a in zip(names, (x, wt, off, b, m))],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    try:
        builtin = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        want = builtin.run(None, dict(zip(names, (x, wt, off, b, m))))[0]
    except Exception as e:  # ORT < 1.25 has no CPU DeformConv
        pytest.skip(f"this onnxruntime has no builtin DeformConv: {e}")
    got = ort_ops.mdcn(x, wt, off, b, m, **attrs)
    err = float(np.abs(got - want).max())
    print(f"vs ORT builtin DeformConv: max abs err {err:.3g}")
    assert err <= 1e-4


def test_cpu_simd_paths_agree(ort_lib, tmp_path):
    """The CPU GEMM has an SSE2 build and an AVX2 build chosen at run time; both sum in the same order, so a
    process forced onto SSE2 (RRSR_CPU_NO_AVX2=1) must give bitwise the same MDCN and RAS outputs."""
    import os
    import subprocess
    import sys

    script = r'''
import sys, numpy as np
sys.path.insert(0, sys.argv[1])
from conftest import OrtOps, mdcn_inputs, ras_inputs
ops = OrtOps(sys.argv[2])
rng = np.random.default_rng(5)
x, w, off, b, m, attrs = mdcn_inputs(rng, 2, 16, 9, 11, 24, offset_group=8, group=2)
np.save(sys.argv[3] + "/mdcn.npy", ops.mdcn(x, w, off, b, m, **attrs))
np.save(sys.argv[3] + "/ras.npy", ops.ras(*ras_inputs(rng, 1, 8, 8, 9, 11, 4, 12)))
'''
    outs = {}
    for flag in ("0", "1"):
        d = tmp_path / flag
        d.mkdir()
        env = dict(os.environ, RRSR_CPU_NO_AVX2=flag)
        r = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent), ort_lib, str(d)], env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        outs[flag] = (np.load(d / "mdcn.npy"), np.load(d / "ras.npy"))
    np.testing.assert_array_equal(outs["0"][0], outs["1"][0])
    np.testing.assert_array_equal(outs["0"][1], outs["1"][1])
