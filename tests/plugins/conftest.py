"""Shared fixtures of the plugin tests: the built ORT custom-op library and single-node model builders.

Helpers are exposed through fixtures (not a helper module) so the tests work under any pytest import mode.
Tests that need the library skip, with the build command as the reason, when it is not built.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `plugins` and `rrsr_model` live at the repo root; CI may not install them
    sys.path.insert(0, str(REPO))
OPS_DIR = REPO / "plugins" / "ops"
MDCN_SPEC = OPS_DIR / "rrsr_modulated_deform_conv.json"
RAS_SPEC = OPS_DIR / "rrsr_ref_aware_selection.json"


def find_nvcc() -> Optional[str]:
    """nvcc on PATH, else the CUDA toolkit's usual places; None when there is none."""
    return shutil.which("nvcc") or next(
        (c for c in ("/usr/local/cuda/bin/nvcc", "/usr/local/bin/nvcc") if Path(c).is_file()), None)


@pytest.fixture(scope="session")
def nvcc_path() -> Optional[str]:
    return find_nvcc()


@pytest.fixture(scope="session")
def nvcc(nvcc_path) -> str:
    """nvcc, or a skip that says why (the CUDA toolkit is absent)."""
    if nvcc_path is None:
        pytest.skip("nvcc not found on PATH (CUDA toolkit not installed): CUDA sources cannot be compiled here")
    return nvcc_path


@pytest.fixture(scope="session")
def trt_plugin_build(nvcc_path) -> Path:
    """The TensorRT plugin libraries, built once per session by scripts/build_tensorrt_plugins.sh against the headers
    in $RRSR_TENSORRT_ROOT into build/plugins-trt (RRSR_TRT_BUILD_DIR overrides); without nvcc/cmake a prebuilt
    folder is used, else a skip. Callers skip first when RRSR_TENSORRT_ROOT is unset."""
    import os
    import subprocess

    out = Path(os.environ.get("RRSR_TRT_BUILD_DIR", REPO / "build" / "plugins-trt"))
    if nvcc_path is not None and shutil.which("cmake") is not None:
        env = dict(os.environ, RRSR_TRT_BUILD_DIR=str(out), PYTHON=sys.executable)
        r = subprocess.run(["bash", str(REPO / "scripts" / "build_tensorrt_plugins.sh"), os.environ["RRSR_TENSORRT_ROOT"]],
                           capture_output=True, text=True, env=env, timeout=1800)
        assert r.returncode == 0, f"build failed:\n{r.stdout}\n{r.stderr[-6000:]}"
        printed = [Path(p) for p in r.stdout.split()]
        assert printed == [out / "librrsr_trt_plugins.so", out / "librrsr_trt_plugins_dynamic.so"], r.stdout
    elif not (out / "librrsr_trt_plugins_dynamic.so").is_file():
        pytest.skip(f"nvcc/cmake not found and no prebuilt libraries in {out}")
    return out


def _load_spec(path: Path) -> dict:
    return json.loads(path.read_text())


class OrtOps:
    """Builds single-node ``rrsr`` models and runs them in ONNX Runtime with the custom-op library."""

    def __init__(self, lib: str):
        import onnx  # noqa: F401  (imported lazily so collection works without it)
        import onnxruntime  # noqa: F401

        self.lib = lib
        self.mdcn_spec = _load_spec(MDCN_SPEC)
        self.ras_spec = _load_spec(RAS_SPEC)

    # ---- model construction
    @staticmethod
    def _onnx_type(arr: np.ndarray) -> int:
        from onnx import TensorProto

        return {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float16): TensorProto.FLOAT16,
                np.dtype(np.int64): TensorProto.INT64, np.dtype(np.int32): TensorProto.INT32}[arr.dtype]

    def model(self, spec: dict, feeds: dict, attrs: Optional[dict] = None, out_dtype=None, node_name: str = "n0"):
        """One node of ``spec``'s op; ``feeds`` maps spec input names to arrays (absent/None = omitted)."""
        from onnx import helper

        names = [i["name"] for i in spec["inputs"]]
        ins = [n if feeds.get(n) is not None else "" for n in names]
        while ins and ins[-1] == "":
            ins.pop()
        node = helper.make_node(spec["op_type"], ins, ["Y"], domain=spec["domain"], name=node_name,
                                **(attrs or {}))
        graph_inputs = [helper.make_tensor_value_info(n, self._onnx_type(feeds[n]), list(feeds[n].shape))
                        for n in names if feeds.get(n) is not None]
        x = feeds[names[0]]
        out_t = self._onnx_type(np.empty(0, out_dtype or x.dtype))
        graph = helper.make_graph([node], "g", graph_inputs, [helper.make_tensor_value_info("Y", out_t, None)])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19),
                                                       helper.make_opsetid(spec["domain"], spec["since_version"])])

    def session(self, model, threads: int = 0):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.register_custom_ops_library(self.lib)
        if threads:
            so.intra_op_num_threads = threads
        so.log_severity_level = 3
        return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])

    def run(self, spec: dict, feeds: dict, attrs: Optional[dict] = None, threads: int = 0) -> np.ndarray:
        m = self.model(spec, feeds, attrs)
        sess = self.session(m, threads)
        return sess.run(None, {k: v for k, v in feeds.items() if v is not None})[0]

    # ---- op shortcuts
    def mdcn(self, x, w, offset, b=None, mask=None, threads: int = 0, **attrs) -> np.ndarray:
        return self.run(self.mdcn_spec, {"X": x, "W": w, "offset": offset, "B": b, "mask": mask}, attrs, threads)

    def ras(self, x, r, w, b, rw, rb, s1w, s1b, s2w, s2b, valid_size=None, threads: int = 0) -> np.ndarray:
        feeds = dict(zip([i["name"] for i in self.ras_spec["inputs"]],
                         (x, r, w, b, rw, rb, s1w, s1b, s2w, s2b, valid_size)))
        return self.run(self.ras_spec, feeds, None, threads)


@pytest.fixture(scope="session")
def ort_lib() -> str:
    from plugins.ort_library import find_library

    lib = find_library()
    if lib is None:
        pytest.skip("librrsr_ort_ops.so is not built: run `bash scripts/build_plugins.sh`")
    return lib


@pytest.fixture(scope="session")
def ort_ops(ort_lib) -> OrtOps:
    return OrtOps(ort_lib)


def mdcn_inputs(rng: np.random.Generator, n: int, c: int, h: int, w: int, c_out: int, k: Sequence[int] = (3, 3),
                strides=(1, 1), pads=(1, 1, 1, 1), dilations=(1, 1), group: int = 1, offset_group: int = 1,
                offset_scale: float = 2.0, bias: bool = True, mask: bool = True):
    """Random MDCN inputs (FP32) for the given geometry; offsets ~ N(0, offset_scale^2)."""
    kh, kw = k
    ho = (h + pads[0] + pads[2] - (dilations[0] * (kh - 1) + 1)) // strides[0] + 1
    wo = (w + pads[1] + pads[3] - (dilations[1] * (kw - 1) + 1)) // strides[1] + 1
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((c_out, c // group, kh, kw)) / np.sqrt(c // group * kh * kw)).astype(np.float32)
    off = (rng.standard_normal((n, 2 * offset_group * kh * kw, ho, wo)) * offset_scale).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32) if bias else None
    m = rng.random((n, offset_group * kh * kw, ho, wo)).astype(np.float32) if mask else None
    attrs = dict(strides=list(strides), pads=list(pads), dilations=list(dilations), group=group,
                 offset_group=offset_group)
    return x, wt, off, b, m, attrs


def ras_inputs(rng: np.random.Generator, n: int, cx: int, cr: int, h: int, w: int, experts: int, c_out: int):
    c = cx + cr
    x = rng.standard_normal((n, cx, h, w)).astype(np.float32)
    r = rng.standard_normal((n, cr, h, w)).astype(np.float32)
    wt = (rng.standard_normal((experts, c_out, c, 3, 3)) / np.sqrt(9 * c)).astype(np.float32)
    b = (rng.standard_normal((experts, c_out)) * 0.1).astype(np.float32)
    rw = (rng.standard_normal((experts, c)) / np.sqrt(c)).astype(np.float32)
    rb = (rng.standard_normal(experts) * 0.1).astype(np.float32)
    s1w = (rng.standard_normal((c, c, 1, 1)) / np.sqrt(c)).astype(np.float32)
    s1b = (rng.standard_normal(c) * 0.1).astype(np.float32)
    s2w = (rng.standard_normal((c_out, c, 1, 1)) / np.sqrt(c)).astype(np.float32)
    s2b = (rng.standard_normal(c_out) * 0.1).astype(np.float32)
    return [x, r, wt, b, rw, rb, s1w, s1b, s2w, s2b]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def make_mdcn_inputs():
    return mdcn_inputs


@pytest.fixture(scope="session")
def make_ras_inputs():
    return ras_inputs
