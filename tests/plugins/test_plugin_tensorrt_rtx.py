"""rrsr-build-engine --target rtx with the project's plugin library: real TensorRT-RTX engines from the demo
checkpoint and from official-format files, FP32 and FP16, dynamic profiles and their edges, every invalid attribute
of the op specs, the standard flavour's DeformConv, the parser's abort survived, and the runner's refusal.

Enabled only when ``RRSR_TENSORRT_ROOT`` holds TensorRT 11 headers (TensorRT-RTX implements TensorRT 11's plugin
interfaces) and ``tensorrt_rtx`` imports (``pip install -e .[rtx]``); the plugin library is built as in
test_plugin_tensorrt.py. Slow (whole-model exports, about a minute each; each build 5-20 s): run it on purpose,
``RRSR_TENSORRT_ROOT=<headers> python -m pytest -s tests/plugins/test_plugin_tensorrt_rtx.py`` (-s prints the
build table). Nothing here runs an engine: deserializing one needs a GPU TensorRT-RTX targets (not SM 9.0).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OPS = {json.loads(p.read_text())["op_type"]: json.loads(p.read_text()) for p in (REPO / "plugins" / "ops").glob("*.json")}
DEMO = REPO / "rrsr_model" / "assets" / "demo_rrsr.pth"
WANT_PLUGINS = {"RrsrModulatedDeformConv": 7, "RrsrPatchMatch": 1, "RrsrRefAwareSelection": 7}   # the rrsr variant
CCS = ["8.9", "12.0"]

TRT_ROOT = os.environ.get("RRSR_TENSORRT_ROOT", "")
if not TRT_ROOT or not (Path(TRT_ROOT) / "include" / "NvInferVersion.h").is_file():
    pytest.skip("RRSR_TENSORRT_ROOT is not set to TensorRT headers (include/NvInferVersion.h): the plugin library "
                "cannot be built", allow_module_level=True)
_major = re.search(r"#define (?:TRT_MAJOR_ENTERPRISE|NV_TENSORRT_MAJOR) +(\d+)",
                   (Path(TRT_ROOT) / "include" / "NvInferVersion.h").read_text())
if _major is None or _major.group(1) != "11":
    pytest.skip("RRSR_TENSORRT_ROOT holds TensorRT headers other than 11.x: TensorRT-RTX loads only plugin libraries "
                "built against TensorRT 11's interfaces", allow_module_level=True)
try:
    import tensorrt_rtx
except ImportError as e:
    pytest.skip(f"tensorrt_rtx not importable ({e}): pip install -e .[rtx]", allow_module_level=True)

import onnx  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from runtime import rtx_link  # noqa: E402
from runtime import sidecar as sc  # noqa: E402
from runtime.build_engine import main as build_main  # noqa: E402


@pytest.fixture(scope="module")
def plugins(trt_plugin_build) -> Path:
    return trt_plugin_build / "librrsr_trt_plugins_dynamic.so"


@pytest.fixture(scope="module", autouse=True)
def link(tmp_path_factory):
    """The libtensorrt_rtx.so link, made by the project's command in a folder of this module's own."""
    d = tmp_path_factory.mktemp("rtx-link")
    old = os.environ.get(rtx_link.LINK_DIR_ENV)
    os.environ[rtx_link.LINK_DIR_ENV] = str(d)
    rtx_link.make_link(log=lambda *_: None)
    yield d
    if old is None:
        os.environ.pop(rtx_link.LINK_DIR_ENV, None)
    else:
        os.environ[rtx_link.LINK_DIR_ENV] = old


def _export(out: Path, *args) -> Path:
    """rrsr-export itself (default options: dynamic LR 8..1024, traced at 40x40), without its ORT parity check."""
    r = subprocess.run([sys.executable, "-m", "export", "--out", str(out), "--no-check", *map(str, args)],
                       capture_output=True, text=True, timeout=1800, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


@pytest.fixture(scope="module")
def graphs(tmp_path_factory) -> dict:
    """FP32 plugin-flavour graphs of the demo bundle and of the same weights as official-format files (generator,
    feature extractor, torchvision-style VGG19 state dicts). The FP16 graphs come from --fp16 (re-export)."""
    import torch

    import rrsr_model
    d = tmp_path_factory.mktemp("rtx-graphs")
    model = rrsr_model.load_model(DEMO)
    official = {"net_g": d / "network_mse.pth", "feature": d / "feature_extraction.pth", "vgg": d / "vgg19.pth"}
    torch.save(model.net_g.state_dict(), official["net_g"])
    torch.save(model.net_extractor.state_dict(), official["feature"])
    torch.save(model.net_map.vgg.state_dict(), official["vgg"])       # features.N.weight / .bias, as torchvision's
    return {"demo": _export(d / "demo.onnx", "--ckpt", DEMO),
            "official": _export(d / "official.onnx", "--ckpt", official["net_g"], "--feature-ckpt", official["feature"],
                                "--vgg-ckpt", official["vgg"]),
            "dir": d}


def _build(onnx_path: Path, out: Path, *args):
    r = CliRunner().invoke(build_main, ["--target", "rtx", "--onnx", str(onnx_path), "--out", str(out), "--force",
                                        *map(str, args)], catch_exceptions=False)
    return r.exit_code, r.output


def _row(name: str, meta: dict, engine: Path) -> str:
    p = meta["profiles"][0]
    prof = "{}..{} (opt {})".format(*("x".join(map(str, p[k])) for k in ("min", "max", "opt")))
    c = meta["census"]
    plug = ", ".join(f"{n} {op.replace('Rrsr', '')}" for op, n in c["plugin_layers_by_type"].items())
    return (f"| {name} | {meta['precision']} | {prof} | {c['layers']} / {c['plugin_layers']} ({plug}) | "
            f"{engine.stat().st_size / 2 ** 20:.1f} MiB | {meta['build_seconds']} s |")


BUILD_METHODS = {"createPlugin(kBUILD)", "getOutputDataTypes", "getOutputShapes", "supportsFormatCombination",
                 "configurePlugin", "getWorkspaceSize", "clone", "getFieldsToSerialize"}
RUNTIME_METHODS = {"setTactic", "onShapeChange", "attachToContext", "enqueue", "createPlugin(kRUNTIME)"}


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("source", ["demo", "official"])
def test_dynamic_plugin_graph_builds(graphs, plugins, tmp_path, source, precision):
    eng = tmp_path / f"{source}_{precision}.engine"
    flag = "--fp16" if precision == "fp16" else "--fp32"
    code, out = _build(graphs[source], eng, flag, "--plugins", plugins, "--compute-capability", "89,120",
                       "--min-lr", "16x16", "--opt-lr", "40x40", "--max-lr", "128x128", "--trace-plugins")
    assert code == 0, out
    meta = sc.read_sidecar(eng)
    sc.check_engine_file(eng, meta)
    assert meta["target"] == "rtx" and meta["tensorrt_version"] == tensorrt_rtx.__version__
    assert meta["precision"] == precision and meta["strongly_typed"] and meta["compute_capabilities"] == CCS
    assert meta["gpu_sm"] == "8.9,12.0" and "GeForce RTX 40xx" in meta["gpu_name"]
    assert meta["census"]["plugin_layers_by_type"] == WANT_PLUGINS and meta["census"]["plugin_layers"] == 15
    assert meta["census"]["layers"] > 1000 and meta["plugins_serialized"] and meta["matching"] == "streaming"
    assert meta["plugin_sha256"] == sc.sha256_file(plugins)
    assert meta["plugin_device_code"]["runs_as"] == {"8.9": "sass", "12.0": "ptx"}
    calls = meta["plugin_calls"]
    assert set(calls) == set(WANT_PLUGINS)
    for op, n in WANT_PLUGINS.items():
        assert BUILD_METHODS <= set(calls[op]), (op, calls[op])
        assert calls[op]["createPlugin(kBUILD)"] == n and calls[op]["configurePlugin"] >= n
        import torch
        if not torch.cuda.is_available():        # the builder runs nothing without a GPU
            assert not RUNTIME_METHODS & set(calls[op]), (op, calls[op])
    if precision == "fp16":                      # FP16 MDCN offers its kernel variants as tactics
        assert {"getNbTactics", "getValidTactics"} <= set(calls["RrsrModulatedDeformConv"])
    if precision == "fp16":                      # re-exported from the checkpoint the FP32 graph records
        assert Path(meta["onnx"]).name == f"{source}_fp16.onnx"
    print("\n" + _row(f"{source} ({'bundle' if source == 'demo' else 'official files'})", meta, eng))
    print("  methods: " + "; ".join(f"{op}: " + ", ".join(f"{m} {k}" for m, k in c.items()) for op, c in calls.items()))


def test_plugins_serialized_into_the_engine_or_named_by_the_sidecar(graphs, plugins, tmp_path):
    small = ["--min-lr", "16x16", "--opt-lr", "16x16", "--max-lr", "16x16", "--compute-capability", "89"]
    code, out = _build(graphs["demo"], tmp_path / "with.engine", "--plugins", plugins, *small)
    assert code == 0, out
    code, out = _build(graphs["demo"], tmp_path / "without.engine", "--plugins", plugins, "--no-serialize-plugins", *small)
    assert code == 0, out
    with_, without = (sc.read_sidecar(tmp_path / n) for n in ("with.engine", "without.engine"))
    assert with_["plugins_serialized"] and not without["plugins_serialized"]
    grown = (tmp_path / "with.engine").stat().st_size - (tmp_path / "without.engine").stat().st_size
    assert 0.9 * plugins.stat().st_size <= grown <= 1.1 * plugins.stat().st_size + 2 ** 20, grown
    marker = b"must have shape [N, C, H, W]"                # a message of the plugin library's
    assert marker in (tmp_path / "with.engine").read_bytes() and marker not in (tmp_path / "without.engine").read_bytes()
    sc.check_plugin_library(with_, None)                     # the runner needs no library for it
    with pytest.raises(sc.SidecarError, match="plugin library it was built with"):
        sc.check_plugin_library(without, tmp_path / "missing.so")


@pytest.mark.parametrize("profile", [("40x40", "40x40", "40x40"), ("8x8", "8x8", "8x8"),
                                     ("16x16", "64x64", "1024x1024")], ids=["min=max=traced", "min=max=8", "largest"])
def test_profile_edges(graphs, plugins, tmp_path, profile):
    eng = tmp_path / "edge.engine"
    lo, opt, hi = profile
    code, out = _build(graphs["demo"], eng, "--plugins", plugins, "--compute-capability", "89",
                       "--min-lr", lo, "--opt-lr", opt, "--max-lr", hi)
    assert code == 0, out
    meta = sc.read_sidecar(eng)
    assert meta["profiles"] == [{"min": [int(v) for v in lo.split("x")], "opt": [int(v) for v in opt.split("x")],
                                 "max": [int(v) for v in hi.split("x")]}]
    assert meta["census"]["plugin_layers_by_type"] == WANT_PLUGINS
    print("\n" + _row("demo (bundle)", meta, eng))
    code, out = _build(graphs["demo"], eng, "--plugins", plugins, "--compute-capability", "89", "--max-lr", "1032x1032")
    assert code == 1 and "outside the graph's dynamic range 8..1024" in out, out


def _attribute_cases():
    """Every way an INT / INTS attribute of the op specs can be wrong, and what the plugin must then say; and a
    plugin_version no creator has."""
    cases = []
    for op, spec in sorted(OPS.items()):
        for a in spec["attributes"]:
            if a["type"] == "string":
                if a["name"] == "plugin_version":
                    cases.append((op, a["name"], "2", "has no plugin creator"))
                continue
            n = a.get("length", 1) if a["type"] == "ints" else 1
            good = a["default"] if a["type"] == "ints" else [a["default"]]
            if "min" in a:
                low = [a["min"] - 1] + list(good[1:])
                cases.append((op, a["name"], low if a["type"] == "ints" else low[0], f">= {a['min']}"))
            cases.append((op, a["name"], list(good) + [good[0]], f"must have {n} value"))
            cases.append((op, a["name"], [float(v) for v in good] if a["type"] == "ints" else float(good[0]),
                          "must be of type kINT32"))
    return cases


@pytest.mark.parametrize("op,name,value,needle", _attribute_cases(),
                         ids=lambda v: str(v) if not isinstance(v, list) else ",".join(map(str, v)))
def test_invalid_attribute_fails_with_our_message(graphs, plugins, tmp_path, op, name, value, needle):
    """The attribute edited into the first node of ``op`` in an exported graph: the build fails with the plugin's
    message (through TensorRT-RTX's logger) naming op, node and field, and the command survives."""
    from onnx import helper
    proto = onnx.load(str(graphs["demo"]))
    node = next(n for n in proto.graph.node if n.op_type == op)
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(kept + [helper.make_attribute(name, value)])
    bad = tmp_path / "bad.onnx"
    onnx.save(proto, str(bad))
    code, out = _build(bad, tmp_path / "bad.engine", "--plugins", plugins, "--compute-capability", "89",
                       "--min-lr", "16x16", "--opt-lr", "16x16", "--max-lr", "16x16")
    assert code == 1, out
    assert "killed" not in out and not (tmp_path / "bad.engine").exists()
    err = out[out.index("Error: "):]
    if needle == "has no plugin creator":
        assert f"node {node.name!r} (op {op}, plugin_version '2', namespace '') has no plugin creator" in err, err
    else:
        line = f"{op} (layer '{node.name}'): field '{name}'"
        assert any(line in x and needle in x for x in err.splitlines()), err


def test_standard_flavour_deform_conv_is_unsupported_by_name(graphs, tmp_path):
    std = _export(graphs["dir"] / "standard.onnx", "--ckpt", DEMO, "--flavor", "standard")
    code, out = _build(std, tmp_path / "std.engine", "--compute-capability", "89",
                       "--min-lr", "16x16", "--opt-lr", "16x16", "--max-lr", "16x16")
    assert code == 1 and "killed" not in out, out
    first = next(n.name for n in onnx.load(str(std), load_external_data=False).graph.node if n.op_type == "DeformConv")
    assert f"node '{first}' (op DeformConv)" in out and "DeformConv (ONNX's standard op) is unsupported by TensorRT-RTX" in out


def test_parser_abort_without_the_link_is_survived(graphs, plugins, tmp_path, monkeypatch):
    """With the pre-check out of the way, the missing link makes TensorRT-RTX's parser abort the build process for
    real; the command reports it (signal, stage, last output, the link) instead of dying with it."""
    if (rtx_link.rtx_library().parent / rtx_link.LINK_NAME).exists():
        pytest.skip("a libtensorrt_rtx.so link exists beside TensorRT-RTX's library: the parser cannot miss it")
    monkeypatch.setenv(rtx_link.LINK_DIR_ENV, str(tmp_path / "no-link"))
    monkeypatch.setattr(rtx_link, "check_link", lambda: rtx_link.rtx_library().parent)   # "the link is beside it"
    code, out = _build(graphs["demo"], tmp_path / "e.engine", "--plugins", plugins, "--compute-capability", "89",
                       "--min-lr", "16x16", "--opt-lr", "16x16", "--max-lr", "16x16")
    assert code == 1, out
    assert "build process was killed by SIGABRT while parsing" in out and "this command survived" in out
    assert "python -m runtime.rtx_link" in out and "terminate called" in out
    assert not (tmp_path / "e.engine").exists() and not (tmp_path / "e.engine.tmp").exists()


def test_gpu_without_plugin_code_is_refused(graphs, plugins, tmp_path):
    code, out = _build(graphs["demo"], tmp_path / "e.engine", "--plugins", plugins, "--compute-capability", "86,89")
    assert code == 1 and "none of it runs on compute capability 8.6" in out and "RRSR_CUDA_ARCHITECTURES=" in out, out


def test_static_library_registers_into_tensorrt_rtx(trt_plugin_build):
    code = ("import ctypes, sys, tensorrt_rtx as trt; ctypes.CDLL(sys.argv[1]); "
            "print(sorted(c.name for c in trt.get_plugin_registry().all_creators if c.name.startswith('Rrsr')))")
    r = subprocess.run([sys.executable, "-c", code, str(trt_plugin_build / "librrsr_trt_plugins.so")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == repr(sorted(OPS)) and "was not registered" not in r.stderr


def test_runner_refuses_the_engine_here_with_the_reason(graphs, plugins, tmp_path):
    import torch

    from runtime.backends import BackendError, ModelFiles, load_runner
    eng = tmp_path / "e.engine"
    code, out = _build(graphs["demo"], eng, "--plugins", plugins, "--compute-capability", "89,120",
                       "--min-lr", "16x16", "--opt-lr", "16x16", "--max-lr", "16x16",
                       "--runtime-cache", tmp_path / "rtx.cache")
    assert code == 0, out
    assert sc.read_sidecar(eng)["runtime_cache"] == str((tmp_path / "rtx.cache").resolve())
    gpu = torch.cuda.get_device_capability(0) if torch.cuda.is_available() else None
    if gpu is not None and f"{gpu[0]}.{gpu[1]}" in CCS:
        pytest.skip("this GPU is one the engine is built for: running it is the GPU check's job")
    with pytest.raises(BackendError) as e:
        load_runner("trt", ModelFiles(engine=str(eng)))
    want = "no CUDA GPU" if gpu is None else "not among them"
    assert want in str(e.value) and "compute capability 8.9 (Ada" in str(e.value), str(e.value)
