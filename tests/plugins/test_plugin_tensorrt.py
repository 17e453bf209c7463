"""The TensorRT plugin libraries (IPluginV3): build, exported symbols, CUDA targets, a host-side check of every
plugin method that needs no GPU, and registration in TensorRT's lean runtime.

Enabled only when ``RRSR_TENSORRT_ROOT`` names a folder whose ``include/`` holds the TensorRT headers (e.g. the
``include/`` of the NVIDIA/TensorRT open-source repository, kept outside this repo). The libraries are built with
``scripts/build_tensorrt_plugins.sh`` (needs nvcc and cmake) into ``build/plugins-trt`` (``RRSR_TRT_BUILD_DIR``
overrides), or, without nvcc, a prebuilt ``build/plugins-trt`` is used. The registry tests additionally need the
``tensorrt_lean`` package (``pip install tensorrt-lean-cu13==11.4.0.106``; not a project dependency) and run each
library in its own subprocess (one plugin library per process). Nothing here runs a kernel: enqueue on real data
needs a GPU with TensorRT.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OPS_DIR = REPO / "plugins" / "ops"
# Every op spec (plugins/ops/*.json) has a TensorRT plugin: op_type -> spec file
SPECS = {json.loads(p.read_text())["op_type"]: p for p in sorted(OPS_DIR.glob("*.json"))}
STATIC_LIB = "librrsr_trt_plugins.so"
DYNAMIC_LIB = "librrsr_trt_plugins_dynamic.so"
CHECK_EXE = "rrsr_trt_plugin_check"
KINT32 = 5  # nvinfer1::PluginFieldType::kINT32 (TensorRT 10.x and 11.x)
ARCHS = (87, 90)

TRT_ROOT = os.environ.get("RRSR_TENSORRT_ROOT", "")
if not TRT_ROOT:
    pytest.skip("RRSR_TENSORRT_ROOT is not set: point it at a folder whose include/ holds the TensorRT headers "
                "(NvInferRuntime.h) to build and check the TensorRT plugins", allow_module_level=True)
if not (Path(TRT_ROOT) / "include" / "NvInferRuntime.h").is_file():
    pytest.skip(f"RRSR_TENSORRT_ROOT={TRT_ROOT} has no include/NvInferRuntime.h", allow_module_level=True)


def _spec(op: str) -> dict:
    return json.loads(SPECS[op].read_text())


def _field_attrs(op: str) -> list:
    """The spec attributes that are TensorRT plugin fields (INT / INTS; strings are registry keys)."""
    return [a for a in _spec(op)["attributes"] if a["type"] in ("int", "ints")]


@pytest.fixture(scope="module")
def build_dir(trt_plugin_build) -> Path:
    return trt_plugin_build


def test_both_libraries_built(build_dir):
    for name in (STATIC_LIB, DYNAMIC_LIB, CHECK_EXE):
        assert (build_dir / name).is_file(), name


def _nm(lib: Path, *flags: str) -> list:
    r = subprocess.run(["nm", "-D", *flags, str(lib)], capture_output=True, text=True, check=True)
    return [line.split() for line in r.stdout.splitlines() if line.strip()]


@pytest.mark.skipif(shutil.which("nm") is None, reason="nm (binutils) not found")
def test_exports_are_exactly_the_entry_points(build_dir):
    static_defs = {row[-1] for row in _nm(build_dir / STATIC_LIB, "--defined-only")}
    dynamic_defs = {row[-1] for row in _nm(build_dir / DYNAMIC_LIB, "--defined-only")}
    assert static_defs == set(), f"self-registering library exports {sorted(static_defs)}"
    assert dynamic_defs == {"getCreators", "setLoggerFinder"}, sorted(dynamic_defs)


@pytest.mark.skipif(shutil.which("nm") is None, reason="nm (binutils) not found")
def test_no_tensorrt_or_cudart_link_dependency(build_dir):
    for lib in (STATIC_LIB, DYNAMIC_LIB):
        # strong undefined symbols without a version are not from libc/libstdc++: there must be none
        unversioned = [row[-1] for row in _nm(build_dir / lib, "--undefined-only")
                       if row[0] == "U" and "@" not in row[-1]]
        assert unversioned == [], (lib, unversioned)
        if shutil.which("readelf"):
            needed = subprocess.run(["readelf", "-d", str(build_dir / lib)], capture_output=True, text=True).stdout
            assert "libnvinfer" not in needed and "libcudart" not in needed, needed


@pytest.mark.skipif(shutil.which("objcopy") is None, reason="objcopy (binutils) not found")
def test_cubins_for_sm87_and_sm90(build_dir, tmp_path):
    """The embedded fatbinary holds CUDA ELF images for both targets (EM_CUDA = 190; SM in e_flags bits 8..15)."""
    for lib in (STATIC_LIB, DYNAMIC_LIB):
        fatbin = tmp_path / (lib + ".fatbin")
        subprocess.run(["objcopy", "-O", "binary", "--only-section=.nv_fatbin", str(build_dir / lib), str(fatbin)],
                       check=True)
        data = fatbin.read_bytes()
        sms, i = set(), data.find(b"\x7fELF")
        while i >= 0:
            if data[i + 4] == 2 and struct.unpack_from("<H", data, i + 18)[0] == 190:
                sms.add((struct.unpack_from("<I", data, i + 48)[0] >> 8) & 0xFF)
            i = data.find(b"\x7fELF", i + 4)
        assert set(ARCHS) <= sms, (lib, sorted(sms))


@pytest.fixture(scope="module")
def host_check(build_dir):
    r = subprocess.run([str(build_dir / CHECK_EXE), str(build_dir / DYNAMIC_LIB)], capture_output=True, text=True,
                       timeout=120)
    return r


def test_host_check_passes(host_check):
    """Every plugin method that needs no GPU, driven through the dynamic library's getCreators()."""
    lines = host_check.stdout.splitlines()
    fails = [line for line in lines if line.startswith("FAIL")]
    assert host_check.returncode == 0 and not fails, host_check.stdout + host_check.stderr
    assert sum(line.startswith("ok ") for line in lines) >= 60, host_check.stdout


def test_creators_match_the_op_specs(host_check):
    described = json.loads(host_check.stdout.splitlines()[0])["creators"]
    assert sorted(c["name"] for c in described) == sorted(SPECS)
    for c in described:
        spec = _spec(c["name"])
        assert c["interface"] == "PLUGIN CREATOR_V3ONE" and c["major"] == 1
        assert (c["version"], c["namespace"]) == (spec["plugin_version"], spec["plugin_namespace"])
        want = [{"name": a["name"], "type": KINT32, "length": a.get("length", 1) if a["type"] == "ints" else 1}
                for a in _field_attrs(c["name"])]
        assert c["fields"] == want, c["name"]


# ---- TensorRT's lean runtime (Python): one library per subprocess

def _header_major() -> int:
    """TensorRT major version of the headers the libraries are built against."""
    text = (Path(TRT_ROOT) / "include" / "NvInferVersion.h").read_text()
    for key in ("TRT_MAJOR_ENTERPRISE", "NV_TENSORRT_MAJOR"):
        m = re.search(rf"#define {key} +(\d+)", text)
        if m:
            return int(m.group(1))
    raise AssertionError("no major version in NvInferVersion.h")


def _lean_major():
    """Major version of the importable tensorrt_lean package, or None."""
    r = subprocess.run([sys.executable, "-c", "import tensorrt_lean as t; print(t.__version__)"], capture_output=True,
                       text=True, timeout=120)
    return int(r.stdout.strip().split(".")[0]) if r.returncode == 0 else None


_LEAN_MAJOR = _lean_major()
if _LEAN_MAJOR is None:
    needs_lean = pytest.mark.skip(reason="tensorrt_lean not importable (pip install tensorrt-lean-cu13==11.4.0.106)")
elif _LEAN_MAJOR != _header_major():
    # The plugin ABI is per major version (e.g. ILoggerFinder derives from IVersionedInterface since 11, which moves
    # findLogger in the vtable): a library built against 10.x headers must not be loaded into TensorRT 11.
    needs_lean = pytest.mark.skip(reason=f"tensorrt_lean is TensorRT {_LEAN_MAJOR} but the headers are TensorRT "
                                         f"{_header_major()}: plugin libraries only load into the major they were "
                                         "built for")
else:
    needs_lean = pytest.mark.skipif(False, reason="")

_REGISTRY_SCRIPT = textwrap.dedent("""
    import ctypes, json, sys
    import numpy as np
    import tensorrt_lean as trt

    mode, lib = sys.argv[1], sys.argv[2]
    registry = trt.get_plugin_registry()
    if mode == "dynamic":
        handle = registry.load_library(lib)
        assert handle is not None, "load_library returned None"
    else:
        ctypes.CDLL(lib)  # registers through REGISTER_TENSORRT_PLUGIN (TensorRT is loaded, RTLD_LOCAL)
    out = {"creators": [], "bad": {}, "good": {}}
    for c in registry.all_creators:
        if c.name.startswith("Rrsr"):
            out["creators"].append({"name": c.name, "version": c.plugin_version, "namespace": c.plugin_namespace,
                                    "fields": [[f.name, int(f.type), f.size] for f in c.field_names]})

    def fc(fields):
        return trt.PluginFieldCollection([trt.PluginField(n, np.array(v, dt), t) for n, v, dt, t in fields])

    I32 = trt.PluginFieldType.INT32
    mdcn = registry.get_creator("RrsrModulatedDeformConv", "1", "")
    bad = {
        "pads_length": [("pads", [1, 2, 3], np.int32, I32)],
        "group_zero": [("group", [0], np.int32, I32)],
        "strides_float": [("strides", [1.0, 1.0], np.float32, trt.PluginFieldType.FLOAT32)],
    }
    for key, fields in bad.items():
        out["bad"][key] = mdcn.create_plugin("bad_" + key, fc(fields), trt.TensorRTPhase.BUILD) is None
        sys.stderr.flush()
    pm = registry.get_creator("RrsrPatchMatch", "1", "")
    pm_bad = {
        "patch_size_zero": [("patch_size", [0], np.int32, I32)],
        "patch_size_length": [("patch_size", [3, 3], np.int32, I32)],
        "patch_size_float": [("patch_size", [3.0], np.float32, trt.PluginFieldType.FLOAT32)],
    }
    for key, fields in pm_bad.items():
        out["bad"]["pm_" + key] = pm.create_plugin("bad_" + key, fc(fields), trt.TensorRTPhase.BUILD) is None
        sys.stderr.flush()
    pm_p = pm.create_plugin("pm", fc([("patch_size", [5], np.int32, I32)]), trt.TensorRTPhase.BUILD)
    good = mdcn.create_plugin("good", fc([("strides", [2, 2], np.int32, I32), ("pads", [1, 1, 1, 1], np.int32, I32),
                                          ("offset_group", [8], np.int32, I32)]), trt.TensorRTPhase.BUILD)
    ras = registry.get_creator("RrsrRefAwareSelection", "1", "")
    ras_p = ras.create_plugin("ras", fc([]), trt.TensorRTPhase.RUNTIME)
    for key, p in (("mdcn", good), ("ras", ras_p), ("patch_match", pm_p)):
        if p is None:
            out["good"][key] = None
            continue
        core = p.get_capability_interface(trt.PluginCapabilityType.CORE)
        build = p.get_capability_interface(trt.PluginCapabilityType.BUILD)
        runtime = p.get_capability_interface(trt.PluginCapabilityType.RUNTIME)
        out["good"][key] = {"name": core.plugin_name, "version": core.plugin_version,
                            "namespace": core.plugin_namespace, "num_outputs": build.num_outputs,
                            "runtime": runtime is not None}
    print("RESULT " + json.dumps(out))
""")


def _run_registry(mode: str, lib: Path):
    r = subprocess.run([sys.executable, "-c", _REGISTRY_SCRIPT, mode, str(lib)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"{mode} library in tensorrt_lean failed (rc {r.returncode}):\n{r.stdout}\n{r.stderr}"
    line = next(x for x in r.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), r.stdout + r.stderr


@needs_lean
@pytest.mark.parametrize("mode,lib", [("dynamic", DYNAMIC_LIB), ("static", STATIC_LIB)])
def test_lean_runtime_registry(build_dir, mode, lib):
    res, log = _run_registry(mode, build_dir / lib)
    by_name = {c["name"]: c for c in res["creators"]}
    assert sorted(by_name) == sorted(SPECS), res["creators"]
    for name, c in by_name.items():
        spec = _spec(name)
        assert (c["version"], c["namespace"]) == (spec["plugin_version"], spec["plugin_namespace"])
        want = [[a["name"], KINT32, a.get("length", 1) if a["type"] == "ints" else 1] for a in _field_attrs(name)]
        assert c["fields"] == want, name
    # bad fields: createPlugin returns nullptr and says which op and field (logger, or stderr without one)
    assert all(res["bad"].values()), res["bad"]
    for field in ("'pads'", "'group'", "'strides'"):
        assert any("RrsrModulatedDeformConv (layer 'bad_" in line and field in line for line in log.splitlines()), \
            (field, log)
    for layer in ("patch_size_zero", "patch_size_length", "patch_size_float"):
        assert any(f"RrsrPatchMatch (layer 'bad_{layer}'" in line and "'patch_size'" in line
                   for line in log.splitlines()), (layer, log)
    # good fields: a plugin whose core capability reports the spec's identity
    for key, name in (("mdcn", "RrsrModulatedDeformConv"), ("ras", "RrsrRefAwareSelection"),
                      ("patch_match", "RrsrPatchMatch")):
        g = res["good"][key]
        assert g is not None, (key, log)
        assert (g["name"], g["version"], g["namespace"]) == (name, _spec(name)["plugin_version"],
                                                             _spec(name)["plugin_namespace"])
        assert g["num_outputs"] == len(_spec(name)["outputs"]) and g["runtime"], g
    # (clone and get_fields_to_serialize are only callable from Python on Python plugins; the host check covers them)


def test_static_library_without_tensorrt_says_why_and_does_not_crash(build_dir):
    """Loading the self-registering library into a process without TensorRT has no registry to register with: it
    must say so (and which major it needs) and register nothing, instead of crashing the process."""
    code = "import ctypes, sys; ctypes.CDLL(sys.argv[1]); print('loaded')"
    r = subprocess.run([sys.executable, "-c", code, str(build_dir / STATIC_LIB)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "loaded" in r.stdout, (r.returncode, r.stdout, r.stderr)
    assert f"no TensorRT {_header_major()}.x library" in r.stderr, r.stderr
    assert "RrsrModulatedDeformConv was not registered" in r.stderr, r.stderr


def test_dynamic_library_loads_without_tensorrt(build_dir):
    """The getCreators library needs nothing from TensorRT to load (TensorRT calls its two entry points)."""
    code = ("import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]); "
            "print(bool(lib.getCreators), bool(lib.setLoggerFinder))")
    r = subprocess.run([sys.executable, "-c", code, str(build_dir / DYNAMIC_LIB)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.split() == ["True", "True"], (r.stdout, r.stderr)
