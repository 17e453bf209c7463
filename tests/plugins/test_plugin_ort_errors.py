"""Invalid attributes, shapes and types give an ORT error (a Python exception) whose message names the op, the
attribute or input and what was expected -- never a crash."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

MDCN = "RrsrModulatedDeformConv"
RAS = "RrsrRefAwareSelection"


def _mdcn_feeds(rng, make_mdcn_inputs, **geo):
    x, w, off, b, m, attrs = make_mdcn_inputs(rng, 1, 8, 6, 7, 4, offset_group=2, **geo)
    return {"X": x, "W": w, "offset": off, "B": b, "mask": m}, attrs


def _expect_error(fn, *needles):
    with pytest.raises(Exception) as info:
        fn()
    msg = str(info.value)
    print(msg)
    for needle in needles:
        assert needle in msg, f"{needle!r} not in error message: {msg}"
    return msg


# ---- attributes: rejected when the session is created (kernel creation), naming the attribute

@pytest.mark.parametrize("attrs, needles", [
    (dict(strides=[1]), ["'strides'", "2 values"]),
    (dict(strides=[0, 1]), ["'strides'", ">= 1"]),
    (dict(pads=[1, 1, 1]), ["'pads'", "4 values"]),
    (dict(pads=[1, -1, 1, 1]), ["'pads'", ">= 0"]),
    (dict(dilations=[1, 0]), ["'dilations'", ">= 1"]),
    (dict(group=0), ["'group'", ">= 1"]),
    (dict(offset_group=-2), ["'offset_group'", ">= 1"]),
    (dict(strides=[1.0, 1.0]), ["'strides'", "INTS"]),
    (dict(group=[1, 1]), ["'group'", "INT"]),
    (dict(plugin_version=1), ["'plugin_version'", "STRING"]),
])
def test_mdcn_bad_attribute(ort_ops, make_mdcn_inputs, rng, attrs, needles):
    feeds, base = _mdcn_feeds(rng, make_mdcn_inputs)
    base.update(attrs)
    model = ort_ops.model(ort_ops.mdcn_spec, feeds, base, node_name="bad_node")
    _expect_error(lambda: ort_ops.session(model), MDCN, "bad_node", *needles)


# ---- shapes: rejected at run time, naming the input and the expected shape

def test_mdcn_offset_shape(ort_ops, make_mdcn_inputs, rng):
    feeds, attrs = _mdcn_feeds(rng, make_mdcn_inputs)
    feeds["offset"] = feeds["offset"][:, :18]  # offset_group 1 layout for an offset_group 2 node
    _expect_error(lambda: ort_ops.run(ort_ops.mdcn_spec, feeds, attrs), MDCN, "'offset'", "[1, 36, 6, 7]",
                  "[1, 18, 6, 7]")


def test_mdcn_mask_shape(ort_ops, make_mdcn_inputs, rng):
    feeds, attrs = _mdcn_feeds(rng, make_mdcn_inputs)
    feeds["mask"] = feeds["mask"][:, :, :5]
    _expect_error(lambda: ort_ops.run(ort_ops.mdcn_spec, feeds, attrs), MDCN, "'mask'", "[1, 18, 6, 7]")


def test_mdcn_bias_shape(ort_ops, make_mdcn_inputs, rng):
    feeds, attrs = _mdcn_feeds(rng, make_mdcn_inputs)
    feeds["B"] = np.zeros(5, np.float32)
    _expect_error(lambda: ort_ops.run(ort_ops.mdcn_spec, feeds, attrs), MDCN, "'B'", "[4]")


def test_mdcn_weight_channels(ort_ops, make_mdcn_inputs, rng):
    feeds, attrs = _mdcn_feeds(rng, make_mdcn_inputs)
    feeds["W"] = feeds["W"][:, :6]
    _expect_error(lambda: ort_ops.run(ort_ops.mdcn_spec, feeds, attrs), MDCN, "'W'", "C / group = 8")


def test_mdcn_input_rank(ort_ops, make_mdcn_inputs, rng):
    feeds, attrs = _mdcn_feeds(rng, make_mdcn_inputs)
    feeds["X"] = feeds["X"][0]
    _expect_error(lambda: ort_ops.run(ort_ops.mdcn_spec, feeds, attrs), MDCN, "'X'", "rank 4")


def test_mdcn_offset_group_must_divide_channels(ort_ops, make_mdcn_inputs, rng):
    feeds, attrs = _mdcn_feeds(rng, make_mdcn_inputs)
    attrs["offset_group"] = 3
    _expect_error(lambda: ort_ops.run(ort_ops.mdcn_spec, feeds, attrs), MDCN, "'offset_group' = 3", "C = 8")


def test_mdcn_group_must_divide_channels(ort_ops, make_mdcn_inputs, rng):
    feeds, attrs = _mdcn_feeds(rng, make_mdcn_inputs)
    attrs["group"] = 3
    _expect_error(lambda: ort_ops.run(ort_ops.mdcn_spec, feeds, attrs), MDCN, "'group' = 3")


def test_mdcn_empty_output(ort_ops, make_mdcn_inputs, rng):
    feeds, attrs = _mdcn_feeds(rng, make_mdcn_inputs)
    attrs.update(pads=[0, 0, 0, 0], dilations=[4, 4])  # span 9 > 6
    _expect_error(lambda: ort_ops.run(ort_ops.mdcn_spec, feeds, attrs), MDCN, "empty")


def test_mdcn_mixed_feature_types(ort_ops, make_mdcn_inputs, rng):
    """X float16 with W float32 matches no registered type combination: ORT refuses the node, naming the op."""
    feeds, attrs = _mdcn_feeds(rng, make_mdcn_inputs)
    feeds["X"] = feeds["X"].astype(np.float16)
    _expect_error(lambda: ort_ops.run(ort_ops.mdcn_spec, feeds, attrs), MDCN)


def test_mdcn_unsupported_type(ort_ops, make_mdcn_inputs, rng):
    feeds, attrs = _mdcn_feeds(rng, make_mdcn_inputs)
    feeds = {k: (v.astype(np.float64) if v is not None else None) for k, v in feeds.items()}
    from onnx import TensorProto

    model = ort_ops.model(ort_ops.mdcn_spec, {k: v.astype(np.float32) for k, v in feeds.items()}, attrs)
    for vi in list(model.graph.input) + list(model.graph.output):
        vi.type.tensor_type.elem_type = TensorProto.DOUBLE
    _expect_error(lambda: ort_ops.session(model), MDCN)


def test_ras_bad_shapes(ort_ops, make_ras_inputs, rng):
    args = make_ras_inputs(rng, 1, 8, 8, 5, 6, 4, 8)
    names = [i["name"] for i in ort_ops.ras_spec["inputs"]]

    def run_with(**override):
        feeds = dict(zip(names, args))
        feeds.update(override)
        return ort_ops.run(ort_ops.ras_spec, feeds)

    _expect_error(lambda: run_with(R=args[1][:, :, :4]), RAS, "'R'", "[1, Cr, 5, 6]")
    _expect_error(lambda: run_with(W=args[2][:, :, :12]), RAS, "'W'", "[4, 8, 16, 3, 3]")
    _expect_error(lambda: run_with(W=args[2][..., :2, :2].copy()), RAS, "'W'", "3, 3")
    _expect_error(lambda: run_with(B=args[3][:3]), RAS, "'B'", "[4, 8]")
    _expect_error(lambda: run_with(routing_weight=args[4][:, :10]), RAS, "'routing_weight'", "[4, 16]")
    _expect_error(lambda: run_with(se1_weight=args[6][:, :, 0, 0]), RAS, "'se1_weight'", "[16, 16, 1, 1]")
    _expect_error(lambda: run_with(se2_bias=args[9][:7]), RAS, "'se2_bias'", "[8]")
    _expect_error(lambda: run_with(valid_size=np.array([3, 4, 5], np.int64)), RAS, "'valid_size'", "[2]")


def test_ras_valid_size_type(ort_ops, make_ras_inputs, rng):
    args = make_ras_inputs(rng, 1, 4, 4, 5, 6, 2, 4)
    _expect_error(lambda: ort_ops.ras(*args, valid_size=np.array([3.0, 4.0], np.float32)), RAS)


def test_missing_required_input_is_refused(ort_ops, make_mdcn_inputs, rng):
    feeds, attrs = _mdcn_feeds(rng, make_mdcn_inputs)
    node = helper.make_node(MDCN, ["X", "W"], ["Y"], domain="rrsr", **attrs)
    model = ort_ops.model(ort_ops.mdcn_spec, feeds, attrs)
    model.graph.node[0].CopyFrom(node)
    _expect_error(lambda: ort_ops.session(model))


def test_session_survives_errors(ort_ops, make_mdcn_inputs, rng):
    """A run that fails validation leaves the session usable for a valid run."""
    feeds, attrs = _mdcn_feeds(rng, make_mdcn_inputs)
    model = ort_ops.model(ort_ops.mdcn_spec, feeds, attrs)
    from onnx import TensorProto  # noqa: F401

    for vi in model.graph.input:  # free shapes so a wrong one reaches the kernel
        for d in vi.type.tensor_type.shape.dim:
            d.dim_param = "d"
    sess = ort_ops.session(model)
    bad = dict(feeds, offset=feeds["offset"][:, :18].copy())
    with pytest.raises(Exception, match="offset"):
        sess.run(None, bad)
    assert sess.run(None, feeds)[0].shape == (1, 4, 6, 7)
