"""rrsr-build-engine --target rtx where no TensorRT headers (so no plugin library) exist, as in CI: TensorRT-RTX is
installed (the project's rtx extra) and its real parser runs; every failure is a clear message, never an abort.
Also the pieces the RTX target added: the libtensorrt_rtx.so link, compute capabilities, the fatbinary reader, the
sidecar checks and the trt backend's refusals. Engines with the project's plugins are built in
tests/plugins/test_plugin_tensorrt_rtx.py (needs TensorRT 11 headers).

Graphs here are single nodes made with onnx.helper (a whole-model export takes a minute): the checks before
TensorRT look only at custom nodes and types, and the parser's verdict on a node does not depend on its neighbours.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from runtime import rtx_link
from runtime import sidecar as sc
from runtime import targets as tg
from runtime.build_engine import main as build_main
from runtime.fatbin import DeviceCode, device_code

REPO = Path(__file__).resolve().parents[1]
try:
    import tensorrt_rtx  # noqa: F401
    RTX_REASON = None
except ImportError as e:
    RTX_REASON = f"tensorrt_rtx not importable ({e}): pip install -e .[rtx] (scripts/setup_env.sh does)"
needs_rtx = pytest.mark.skipif(RTX_REASON is not None, reason=RTX_REASON or "")


def _tensor(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def _init(name, shape):
    return helper.make_tensor(name, TensorProto.FLOAT, shape, np.zeros(int(np.prod(shape)), np.float32).tolist())


def _mdcn_graph(path: Path) -> Path:
    """One rrsr::RrsrModulatedDeformConv node, as the plugin flavour emits it."""
    node = helper.make_node("RrsrModulatedDeformConv", ["X", "W", "offset"], ["Y"], domain="rrsr", name="node_mdcn_0",
                            pads=[1, 1, 1, 1], plugin_version="1", plugin_namespace="")
    g = helper.make_graph([node], "g", [_tensor("X", [1, 8, 6, 6]), _tensor("offset", [1, 18, 6, 6])],
                          [_tensor("Y", [1, 8, 6, 6])], initializer=[_init("W", [8, 8, 3, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19), helper.make_opsetid("rrsr", 1)])
    onnx.save(m, str(path))
    return path


def _deform_conv_graph(path: Path) -> Path:
    """One standard ONNX DeformConv (opset 19) node, as the standard flavour emits MDCN."""
    node = helper.make_node("DeformConv", ["X", "W", "offset", "B", "mask"], ["Y"], name="node_deform_conv_0",
                            pads=[1, 1, 1, 1], offset_group=1)
    g = helper.make_graph([node], "g", [_tensor("X", [1, 8, 6, 6]), _tensor("offset", [1, 18, 6, 6]),
                                        _tensor("mask", [1, 9, 6, 6])],
                          [_tensor("Y", [1, 8, 6, 6])], initializer=[_init("W", [8, 8, 3, 3]), _init("B", [8])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)]), str(path))
    return path


def _build(args, env=None):
    r = CliRunner().invoke(build_main, [str(a) for a in args], catch_exceptions=False, env=env)
    return r.exit_code, r.output


@pytest.fixture
def own_link(tmp_path, monkeypatch):
    """A link folder of the test's own, with the link made by runtime.rtx_link."""
    monkeypatch.setenv(rtx_link.LINK_DIR_ENV, str(tmp_path / "link"))
    rtx_link.make_link(log=lambda *_: None)
    return tmp_path / "link"


SMALL = ["--min-lr", "8x8", "--opt-lr", "8x8", "--max-lr", "8x8"]


# -- the libtensorrt_rtx.so link -----------------------------------------------------------------------------

@needs_rtx
def test_link_command_creates_checks_and_never_overwrites_a_file(tmp_path):
    env = dict(os.environ, **{rtx_link.LINK_DIR_ENV: str(tmp_path / "lnk")})
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "runtime.rtx_link"]
    beside = (rtx_link.rtx_library().parent / rtx_link.LINK_NAME).exists()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    if beside:           # a link beside the library (e.g. ONNX Runtime's RTX wheel made it) is used as it is
        assert "already there" in r.stdout
        return
    link = tmp_path / "lnk" / rtx_link.LINK_NAME
    assert "linked" in r.stdout and str(link) in r.stdout
    assert link.is_symlink() and link.resolve() == rtx_link.rtx_library().resolve()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "already there" in r.stdout
    link.unlink()
    link.write_text("a user's file")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1 and "is not a symbolic link" in r.stderr and link.read_text() == "a user's file"


@needs_rtx
def test_missing_link_is_diagnosed_by_name_before_parsing(tmp_path, monkeypatch):
    if (rtx_link.rtx_library().parent / rtx_link.LINK_NAME).exists():
        pytest.skip("a libtensorrt_rtx.so link exists beside TensorRT-RTX's library: the link cannot be missing")
    monkeypatch.setenv(rtx_link.LINK_DIR_ENV, str(tmp_path / "empty"))
    lib = tmp_path / "plugins.so"
    lib.write_bytes(b"not loaded: the link is checked first")
    code, out = _build(["--target", "rtx", "--onnx", _mdcn_graph(tmp_path / "g.onnx"), "--out", tmp_path / "e.engine",
                        "--plugins", lib, "--compute-capability", "89"] + SMALL)
    assert code == 1, out
    assert "libtensorrt_rtx.so" in out and str(tmp_path / "empty" / "libtensorrt_rtx.so") in out
    assert "does not exist" in out and "python -m runtime.rtx_link" in out and "aborts" in out
    assert "killed" not in out and not (tmp_path / "e.engine").exists()


# -- rrsr-build-engine --target rtx: refusals with the reason ------------------------------------------------

@needs_rtx
def test_plugin_graph_without_plugin_library(tmp_path):
    code, out = _build(["--target", "rtx", "--onnx", _mdcn_graph(tmp_path / "g.onnx"), "--out", tmp_path / "e.engine",
                        "--plugins", tmp_path / "none.so", "--compute-capability", "89"] + SMALL)
    assert code == 1 and "none.so does not exist" in out and "RrsrModulatedDeformConv" in out, out


@needs_rtx
def test_rtx_options_are_checked(tmp_path, own_link):
    g = _mdcn_graph(tmp_path / "g.onnx")
    base = ["--target", "rtx", "--onnx", g, "--out", tmp_path / "e.engine"] + SMALL
    lib = tmp_path / "plugins.so"
    lib.write_bytes(b"x")
    code, out = _build(base + ["--plugins", lib, "--timing-cache", tmp_path / "t.cache"])
    assert code == 1 and "no timing cache" in out and "--runtime-cache" in out, out
    code, out = _build(base + ["--plugins", lib, "--compute-capability", "90"])
    assert code == 1 and "'90' is not a TensorRT-RTX target" in out and "no SM 9.0" in out, out
    code, out = _build(base + ["--plugins", lib, "--compute-capability", "89,sm_120x"])
    assert code == 1 and "sm_120x" in out, out
    import torch
    if not torch.cuda.is_available():
        code, out = _build(base + ["--plugins", lib])
        assert code == 1 and "no GPU is visible" in out and "--compute-capability" in out, out
        code, out = _build(base + ["--plugins", lib, "--compute-capability", "current"])
        assert code == 1 and "none is visible" in out, out
    code, out = _build(base + ["--plugins", lib, "--compute-capability", "89"])   # not an ELF library
    assert code == 1 and "cannot read the device code of plugin library" in out and str(lib) in out, out
    assert not (tmp_path / "e.engine").exists()


@needs_rtx
def test_library_without_code_for_the_gpus_is_refused(tmp_path, own_link):
    from plugins.ort_library import find_library
    lib = find_library()                        # a real shared library without CUDA device code
    if lib is None:
        pytest.skip("librrsr_ort_ops.so is not built: run `bash scripts/build_plugins.sh`")
    code, out = _build(["--target", "rtx", "--onnx", _mdcn_graph(tmp_path / "g.onnx"), "--out", tmp_path / "e.engine",
                        "--plugins", lib, "--compute-capability", "86,120"] + SMALL)
    assert code == 1, out
    assert "SASS none; PTX none" in out and "compute capability 8.6, 12.0" in out
    assert "RRSR_CUDA_ARCHITECTURES='86;120'" in out


@needs_rtx
def test_standard_deform_conv_is_unsupported_by_name_and_the_command_survives(tmp_path):
    """The real TensorRT-RTX parser, in the build's child process: ONNX DeformConv maps to TensorRT's
    ModulatedDeformConv2d plugin, which TensorRT-RTX does not ship."""
    code, out = _build(["--target", "rtx", "--onnx", _deform_conv_graph(tmp_path / "std.onnx"),
                        "--out", tmp_path / "e.engine", "--compute-capability", "89"] + SMALL)
    assert code == 1, out
    assert "TensorRT-RTX's ONNX parser rejected" in out and "node 'node_deform_conv_0' (op DeformConv)" in out
    assert "unsupported by TensorRT-RTX" in out and "--flavor plugin" in out
    assert "killed" not in out and not (tmp_path / "e.engine").exists()


@needs_rtx
def test_auto_target_says_which_and_why(tmp_path):
    code, out = _build(["--onnx", _deform_conv_graph(tmp_path / "std.onnx"), "--out", tmp_path / "e.engine",
                        "--compute-capability", "89"] + SMALL)
    try:
        import tensorrt  # noqa: F401
        want = "target: trt (auto: TensorRT"
    except ImportError:
        want = "target: rtx (auto: TensorRT-RTX 1.7.1.116 is installed; TensorRT is not installed"
    assert want in out, out


# -- what the RTX target added, in pure Python -----------------------------------------------------------------

def test_compute_capability_parsing():
    assert tg.parse_compute_capabilities("120, 89,sm86,8.9") == ["8.6", "8.9", "12.0"]
    assert tg.parse_compute_capabilities("current") == ["current"]
    for bad in ("90", "current,89", "", "8.7"):
        with pytest.raises(ValueError, match="--compute-capability"):
            tg.parse_compute_capabilities(bad)
    assert "Ada" in tg.gpus_of(["8.9"]) and " or 12.0 (Blackwell" in tg.gpus_of(["8.9", "12.0"])


def test_device_code_coverage_rules():
    code = DeviceCode(sass=["8.6"], ptx=["9.0"])
    assert code.covers("8.6") == code.covers("8.9") == "sass"         # a cubin runs on later minors of its major
    assert code.covers("9.0") == code.covers("12.0") == "ptx"         # PTX is JIT-compiled on any later GPU
    assert code.covers("8.0") is None and code.covers("7.5") is None


def test_device_code_of_a_real_cuda_library(tmp_path):
    nvcc = shutil.which("nvcc") or next((c for c in ("/usr/local/cuda/bin/nvcc",) if Path(c).is_file()), None)
    if nvcc is None:
        pytest.skip("nvcc not found: no CUDA library can be compiled here")
    src = tmp_path / "k.cu"
    src.write_text("__global__ void k(float* x) { x[threadIdx.x] += 1.0f; }\n"
                   "extern \"C\" void launch(float* x) { k<<<1, 32>>>(x); }\n")
    lib = tmp_path / "libk.so"
    r = subprocess.run([nvcc, "-shared", "-Xcompiler", "-fPIC", "-gencode", "arch=compute_86,code=sm_86",
                        "-gencode", "arch=compute_90,code=compute_90", str(src), "-o", str(lib)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert device_code(lib) == DeviceCode(sass=["8.6"], ptx=["9.0"])
    with pytest.raises(ValueError, match="not a readable ELF"):
        device_code(src)


def _rtx_sidecar(tmp_path, **over) -> Path:
    eng = tmp_path / "rtx.engine"
    eng.write_bytes(b"an engine's bytes")
    meta = sc.make_sidecar(tensorrt_version="1.7.1.116", gpu_name=tg.gpus_of(["8.9", "12.0"]), gpu_sm="8.9,12.0",
                           precision="fp16", profiles=[{"min": [8, 8], "opt": [16, 16], "max": [32, 32]}],
                           engine_sha256=sc.sha256_file(eng), plugin_library="/elsewhere/librrsr_trt_plugins_dynamic.so",
                           plugin_sha256="f" * 64, target="rtx",
                           extra={"compute_capabilities": ["8.9", "12.0"], "plugins_serialized": True})
    meta.update(over)
    sc.write_sidecar(eng, meta)
    return eng


def test_rtx_sidecar_checks(tmp_path):
    meta = sc.read_sidecar(_rtx_sidecar(tmp_path))
    assert sc.target_of(meta) == "rtx" and sc.target_of({"format": sc.FORMAT}) == "trt"
    assert sc.environment_mismatches(meta, tensorrt_version="1.7.1.116", gpu_name="NVIDIA GeForce RTX 4090",
                                     gpu_sm="8.9") == []
    why = sc.environment_mismatches(meta, tensorrt_version="1.7.1.116", gpu_name="NVIDIA H200", gpu_sm="9.0")
    assert len(why) == 1 and "8.9, 12.0" in why[0] and "NVIDIA H200 (SM 9.0), not among them" in why[0]
    why = sc.environment_mismatches(meta, tensorrt_version="1.8.0.1", gpu_name="RTX 5090", gpu_sm="12.0")
    assert why == ["built with TensorRT-RTX 1.7.1.116, this is TensorRT-RTX 1.8.0.1"]
    sc.check_plugin_library(meta, None)            # the engine carries its plugin library
    with pytest.raises(sc.SidecarError, match="plugin library it was built with"):
        sc.check_plugin_library(dict(meta, plugins_serialized=False), None)


@needs_rtx
def test_trt_backend_refuses_an_rtx_engine_without_a_gpu_naming_the_gpus(tmp_path):
    import torch

    from runtime.backends import BackendUnavailable, ModelFiles, load_runner
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the no-GPU refusal cannot be shown")
    eng = _rtx_sidecar(tmp_path)
    with pytest.raises(BackendUnavailable) as e:        # no plugin library needed: the engine carries it
        load_runner("trt", ModelFiles(engine=str(eng)))
    msg = str(e.value)
    assert "no CUDA GPU" in msg and "compute capability 8.9 (Ada" in msg and "12.0 (Blackwell" in msg
    with pytest.raises(BackendUnavailable, match="trt: no CUDA GPU"):          # auto skips it with the reason
        load_runner("auto", ModelFiles(engine=str(eng)))
    assert json.loads(sc.sidecar_path(eng).read_text())["target"] == "rtx"
