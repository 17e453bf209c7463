"""rrsr-export: graph structure against the op spec, TensorRT census, dynamic dims, ORT parity, CLI errors."""
import re

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from onnx import helper

import rrsr_model
from export.check import (ReferenceRunner, custom_node_problems, op_census, run_checker, tensorrt_problems,
                          uses_custom_ops)
from export.cli import main as export_main
from export.onnx_export import ExportOptions, export_model
from export.validate import FP32_TOLERANCE, make_runner, validate
from plugins.opspec import load_specs, spec_for_torch_op
from plugins.ort_library import describe, find_library

SIZES = [(12, 16), (9, 7)]          # two sizes, one non-square with odd sides


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = rrsr_model.build_model("rrsr").eval()
    for p in m.net_g.parameters():        # non-zero offsets and biases so every path matters
        p.data.add_(torch.randn_like(p) * 0.01)
    return m


@pytest.fixture(scope="module")
def plugin_graph(model):
    return export_model(model, ExportOptions(flavour="plugin", lr_size=SIZES[0]))


@pytest.fixture(scope="module")
def standard_graph(model):
    return export_model(model, ExportOptions(flavour="standard", lr_size=SIZES[0]))


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def test_plugin_nodes_follow_the_op_spec(plugin_graph):
    specs = {s.op_type: s for s in load_specs().values()}
    custom = [n for n in plugin_graph.graph.node if n.domain == "rrsr"]
    assert {n.op_type for n in custom} == set(specs)
    assert sum(n.op_type == "RrsrModulatedDeformConv" for n in custom) == 7
    assert sum(n.op_type == "RrsrRefAwareSelection" for n in custom) == 7
    assert any(o.domain == "rrsr" and o.version == 1 for o in plugin_graph.opset_import)
    for n in custom:
        spec = specs[n.op_type]
        a = _attrs(n)
        assert set(a) <= {x["name"] for x in spec.attributes}
        assert a["plugin_version"].decode() == spec.plugin_version and a["plugin_namespace"].decode() == ""
        assert len(n.input) <= len(spec.inputs)
        if n.op_type == "RrsrModulatedDeformConv":
            assert a["offset_group"] == 8 and a["pads"] == [1, 1, 1, 1] and a["strides"] == [1, 1]
    assert custom_node_problems(plugin_graph) == []
    # matching is one streaming RrsrPatchMatch node: no (h*w)^2 score matrix (MatMul + ArgMax) in the graph
    assert sum(n.op_type == "RrsrPatchMatch" for n in custom) == 1
    assert not any(n.op_type in ("ArgMax", "MatMul") for n in plugin_graph.graph.node)
    assert not any(n.op_type in ("DeformConv", "ModulatedDeformConv2d") for n in plugin_graph.graph.node)


def test_spec_attribute_names_match_the_torch_op_and_the_ort_library():
    for spec in load_specs().values():
        namespace, name = spec.torch_op.split("::")
        schema = getattr(getattr(torch.ops, namespace), name).default._schema
        torch_args = [a.name for a in schema.arguments]
        assert all(a["name"] in torch_args for a in spec.op_attributes), (spec.op_type, torch_args)
    lib = find_library()
    if lib is None:
        pytest.skip("ORT custom-op library not built (bash scripts/build_plugins.sh)")
    described = {op["op_type"]: op for op in describe(lib)["ops"]}
    for s in load_specs().values():
        assert [a["name"] for a in described[s.op_type]["attributes"]] == [a["name"] for a in s.attributes]
        assert [i["name"] for i in described[s.op_type]["inputs"]] == s.input_names


@pytest.mark.parametrize("graph_name", ["plugin_graph", "standard_graph"])
def test_checker_census_and_dynamic_dims(graph_name, request):
    graph = request.getfixturevalue(graph_name)
    run_checker(graph)
    assert tensorrt_problems(graph) == []
    census = op_census(graph)
    assert census["::ScatterND"] == 0 and census["::Loop"] == 0
    for n in graph.graph.node:
        if n.op_type == "Resize":
            assert _attrs(n)["mode"] in (b"linear", b"nearest")
    dims = {vi.name: [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
            for vi in list(graph.graph.input) + list(graph.graph.output)}
    assert dims == {"lr": [1, 3, "h", "w"], "lr_up": [1, 3, "H", "W"], "ref": [1, 3, "H", "W"],
                    "valid_size": [2], "sr": [1, 3, "H", "W"]}
    if graph_name == "standard_graph":
        assert census["::DeformConv"] == 7 and not uses_custom_ops(graph)


def test_census_flags_what_tensorrt_cannot_take(plugin_graph):
    bad = onnx.ModelProto()
    bad.CopyFrom(plugin_graph)
    bad.graph.node.append(helper.make_node("Mod", ["a", "b"], ["c"], name="mod0"))
    bad.graph.node.append(helper.make_node("Resize", ["a", "", "s"], ["d"], name="rs0", mode="cubic"))
    node = next(n for n in bad.graph.node if n.domain == "rrsr")
    del node.attribute[:]
    problems = "\n".join(tensorrt_problems(bad))
    assert "mod0" in problems and "'cubic'" in problems and "plugin_version" in problems


@pytest.mark.parametrize("graph_name", ["plugin_graph", "standard_graph"])
def test_onnxruntime_parity_two_sizes(graph_name, request, model):
    graph = request.getfixturevalue(graph_name)
    if uses_custom_ops(graph) and find_library() is None:
        pytest.skip("ORT custom-op library not built (bash scripts/build_plugins.sh)")
    results = validate(model, graph, SIZES)
    for r in results:
        print(graph_name, r.lr_size, r.parity, r.matching)
        assert r.parity.max_abs <= FP32_TOLERANCE, (r.lr_size, str(r.parity))
        # plugin graphs: the reference is fed the graph's RrsrPatchMatch correspondence, compared separately
        assert (r.matching is not None) == (graph_name == "plugin_graph")
        assert r.matching is None or r.matching["near_ties_only"]


def test_python_fallback_runs_the_plugin_graph(plugin_graph, model):
    r = validate(model, plugin_graph, [(6, 5)], runner=ReferenceRunner(plugin_graph))[0]
    assert r.parity.max_abs <= FP32_TOLERANCE


@pytest.mark.parametrize("variant", ["rrsr-s", "c2-matching"])
def test_other_variants_export(variant):
    torch.manual_seed(1)
    m = rrsr_model.build_model(variant).eval()
    g = export_model(m, ExportOptions(flavour="plugin", lr_size=(8, 8), dynamic=False))
    run_checker(g)
    n_mdcn = sum(n.op_type == "RrsrModulatedDeformConv" for n in g.graph.node)
    n_ras = sum(n.op_type == "RrsrRefAwareSelection" for n in g.graph.node)
    assert (n_mdcn, n_ras) == ({"rrsr-s": 5, "c2-matching": 3}[variant], {"rrsr-s": 5, "c2-matching": 0}[variant])
    assert [d.dim_value for d in g.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 8, 8]
    runner, _ = make_runner(g)
    assert validate(m, g, [(8, 8)], runner=runner)[0].parity.max_abs <= FP32_TOLERANCE


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    torch.manual_seed(2)
    path = tmp_path_factory.mktemp("ckpt") / "c2.pth"
    rrsr_model.save_bundle(rrsr_model.build_model("c2-matching"), path)
    return path


def test_cli_writes_a_checked_graph_and_never_overwrites(bundle, tmp_path):
    out = tmp_path / "c2.onnx"
    args = ["--ckpt", str(bundle), "--out", str(out), "--static", "--lr-size", "8x8"]
    res = CliRunner().invoke(export_main, args)
    assert res.exit_code == 0, res.output
    assert "op census:" in res.output and "ok" in res.output and out.is_file()
    onnx.checker.check_model(str(out))
    from export.metadata import read_metadata, sha256_file
    meta = read_metadata(out)
    assert meta["precision"] == "fp32" and meta["flavour"] == "plugin" and meta["variant"] == "c2-matching"
    assert meta["ckpt_sha256"] == sha256_file(bundle) and meta["dynamic"] == "0" and meta["lr_size"] == "8x8"
    before = out.stat().st_mtime_ns
    res = CliRunner().invoke(export_main, args)
    assert res.exit_code != 0 and "--force" in res.output and out.stat().st_mtime_ns == before


@pytest.mark.parametrize("extra,msg", [
    (["--opset", "17"], "opset 17 is not supported"),
    (["--flavor", "standard", "--opset", "18"], "DeformConv needs opset >= 19"),
    (["--variant", "rrsr"], "is a 'c2-matching' network|holds variant 'c2-matching'"),
    (["--lr-size", "40"], "expected HxW"),
    (["--variant", "nope"], "Invalid value for '--variant'"),
])
def test_cli_errors(bundle, tmp_path, extra, msg):
    res = CliRunner().invoke(export_main, ["--ckpt", str(bundle), "--out", str(tmp_path / "x.onnx")] + extra)
    assert res.exit_code != 0
    assert re.search(msg, res.output), res.output


def test_cli_bad_checkpoint_and_output(tmp_path, bundle):
    (tmp_path / "bad.pth").write_bytes(b"garbage")
    res = CliRunner().invoke(export_main, ["--ckpt", str(tmp_path / "bad.pth"), "--out", str(tmp_path / "x.onnx")])
    assert res.exit_code != 0 and "not a PyTorch checkpoint or corrupt" in res.output
    res = CliRunner().invoke(export_main, ["--ckpt", str(bundle), "--out", str(tmp_path / "no" / "x.onnx")])
    assert res.exit_code != 0 and "does not exist" in res.output
    (tmp_path / "file").write_text("")
    res = CliRunner().invoke(export_main, ["--ckpt", str(bundle), "--out", str(tmp_path / "file" / "x.onnx")])
    assert res.exit_code != 0 and "does not exist" in res.output


@pytest.fixture(scope="module")
def fp16_graph(model):
    return export_model(model, ExportOptions(flavour="plugin", precision="fp16", lr_size=SIZES[0]))


def test_fp16_graph_has_the_documented_types(fp16_graph):
    from onnx import TensorProto as T

    from export.check import fp16_policy_problems, tensor_types
    run_checker(fp16_graph)
    assert fp16_policy_problems(fp16_graph) == []
    types = tensor_types(fp16_graph)
    mdcn = [n for n in fp16_graph.graph.node if n.op_type == "RrsrModulatedDeformConv"]
    assert [types[t] for t in mdcn[0].input] == [T.FLOAT16, T.FLOAT16, T.FLOAT, T.FLOAT16, T.FLOAT]
    ras = next(n for n in fp16_graph.graph.node if n.op_type == "RrsrRefAwareSelection")
    assert [types[t] for t in ras.input[:10]] == [T.FLOAT16] * 4 + [T.FLOAT] * 6
    assert types["sr"] == T.FLOAT and types["lr"] == T.FLOAT
    # the checker catches a violation: make one MDCN offset FP16
    broken = onnx.ModelProto()
    broken.CopyFrom(fp16_graph)
    off = next(n for n in broken.graph.node if n.op_type == "RrsrModulatedDeformConv").input[2]
    next(v for v in broken.graph.value_info if v.name == off).type.tensor_type.elem_type = T.FLOAT16
    assert any("input 2" in p for p in fp16_policy_problems(broken))


def test_fp16_graph_parity_in_onnxruntime(fp16_graph, model):
    if find_library() is None:
        pytest.skip("ORT custom-op library not built (bash scripts/build_plugins.sh)")
    r = validate(model, fp16_graph, SIZES[:1])[0]
    print("fp16 plugin graph vs PyTorch FP32:", r.parity)
    assert r.passes("fp16") and r.parity.max_abs > 0    # FP16 weights really changed the arithmetic
