"""The MDCN op against ONNX's DeformConv: the onnx package's node test vectors, onnx.reference and ORT."""
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from rrsr_model.ops.mdcn import mdcn_reference, modulated_deform_conv


def _attrs(node):
    a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
    return dict(strides=a.get("strides", [1, 1]), pads=a.get("pads", [0, 0, 0, 0]),
                dilations=a.get("dilations", [1, 1]), group=a.get("group", 1), offset_group=a.get("offset_group", 1))


def _onnx_cases():
    from onnx.backend.test.case.node import collect_testcases
    return [c for c in collect_testcases(None) if c.model.graph.node[0].op_type == "DeformConv"]


def test_onnx_node_test_vectors():
    cases = _onnx_cases()
    assert len(cases) >= 4
    for case in cases:
        node = case.model.graph.node[0]
        names = [i for i in node.input]
        for inputs, outputs in case.data_sets:
            t = dict(zip(names, [torch.from_numpy(np.asarray(x)) for x in inputs]))
            x, w, off = (t[names[0]], t[names[1]], t[names[2]])
            b = t.get(names[3]) if len(names) > 3 and names[3] else None
            m = t.get(names[4]) if len(names) > 4 and names[4] else None
            y = modulated_deform_conv(x, w, off, b, m, **_attrs(node))
            np.testing.assert_allclose(y.numpy(), outputs[0], atol=1e-5, err_msg=case.name)


def _deform_model(attrs, shapes, with_b=True, with_m=True):
    ins = ["X", "W", "O"] + (["B"] if with_b else [""]) + (["M"] if with_m else [])
    node = helper.make_node("DeformConv", ins, ["Y"], kernel_shape=list(shapes["W"][2:]), **attrs)
    vis = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(shapes[n])) for n in ins if n]
    graph = helper.make_graph([node], "g", vis, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])


CASES = [  # N, C, H, W, Cout, kh, kw, strides, pads, dilations, group, offset_group, offset scale
    (1, 4, 5, 6, 2, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1, 2, 6.0),        # large offsets, many outside
    (2, 4, 6, 5, 4, 3, 3, (2, 2), (1, 0, 1, 2), (1, 1), 2, 2, 2.0),        # groups, stride 2, asym pads
    (1, 2, 7, 7, 2, 3, 2, (1, 1), (2, 1, 2, 1), (2, 2), 1, 1, 1.5),        # dilation 2, non-square kernel
]


@pytest.mark.parametrize("case", CASES)
def test_random_against_onnx_reference(case):
    n, c, h, w, co, kh, kw, s, p, d, g, og, sc = case
    rng = np.random.default_rng(0)
    ho = (h + p[0] + p[2] - (d[0] * (kh - 1) + 1)) // s[0] + 1
    wo = (w + p[1] + p[3] - (d[1] * (kw - 1) + 1)) // s[1] + 1
    data = {"X": rng.standard_normal((n, c, h, w)), "W": rng.standard_normal((co, c // g, kh, kw)),
            "O": rng.standard_normal((n, 2 * og * kh * kw, ho, wo)) * sc, "B": rng.standard_normal(co),
            "M": rng.random((n, og * kh * kw, ho, wo))}
    data = {k: v.astype(np.float32) for k, v in data.items()}
    attrs = dict(strides=list(s), pads=list(p), dilations=list(d), group=g, offset_group=og)
    model = _deform_model(attrs, {k: v.shape for k, v in data.items()})
    expected = ReferenceEvaluator(model).run(None, data)[0]
    t = {k: torch.from_numpy(v) for k, v in data.items()}
    got = modulated_deform_conv(t["X"], t["W"], t["O"], t["B"], t["M"], s, p, d, g, og).numpy()
    assert np.abs(got - expected).max() < 1e-4
    # and onnxruntime's native DeformConv (>= 1.25), without bias and mask
    ort = pytest.importorskip("onnxruntime")
    model2 = _deform_model(attrs, {k: v.shape for k, v in data.items()}, with_b=False, with_m=False)
    sess = ort.InferenceSession(model2.SerializeToString(), providers=["CPUExecutionProvider"])
    expected2 = sess.run(None, {k: data[k] for k in ("X", "W", "O")})[0]
    got2 = modulated_deform_conv(t["X"], t["W"], t["O"], None, None, s, p, d, g, og).numpy()
    assert np.abs(got2 - expected2).max() < 1e-4


def test_fp16_inputs_compute_in_fp32():
    torch.manual_seed(0)
    x, w = torch.randn(1, 8, 10, 10), torch.randn(4, 8, 3, 3)
    off, m = torch.randn(1, 36, 10, 10) * 3 + 200.3, torch.rand(1, 18, 10, 10)  # far outside: zero
    y = modulated_deform_conv(x.half(), w.half(), off, None, m, pads=(1, 1, 1, 1), offset_group=2)
    assert y.dtype == torch.float16 and y.abs().max() == 0
    off = torch.randn(1, 36, 10, 10) * 3
    ref = mdcn_reference(x, w, off, None, m, pads=(1, 1, 1, 1), offset_group=2)
    y = modulated_deform_conv(x.half(), w.half(), off, None, m, pads=(1, 1, 1, 1), offset_group=2)
    assert (y.float() - ref).abs().max() < 0.05


def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    off = (torch.rand(1, 18, 4, 4, dtype=torch.float64) * 3 - 1.5 + 0.25).requires_grad_()
    m = torch.rand(1, 9, 4, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda *a: modulated_deform_conv(*a, pads=(1, 1, 1, 1)), (x, w, off, b, m), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("bad,msg", [
    (dict(offset=torch.zeros(1, 17, 4, 4)), "offset must have shape"),
    (dict(mask=torch.zeros(1, 8, 4, 4)), "mask must have shape"),
    (dict(group=3), "group=3"),
    (dict(offset_group=3), "offset_group=3"),
    (dict(strides=(0, 1)), "strides"),
])
def test_invalid_arguments_name_the_problem(bad, msg):
    args = dict(x=torch.zeros(1, 2, 4, 4), weight=torch.zeros(2, 2, 3, 3), offset=torch.zeros(1, 18, 4, 4),
                bias=None, mask=torch.zeros(1, 9, 4, 4), pads=(1, 1, 1, 1))
    args.update(bad)
    with pytest.raises(ValueError, match=msg):
        modulated_deform_conv(**args)
