"""runtime/: backends (torch, ort; trt error paths), infer/parity/bench/build-engine CLIs, sidecar checks.

Tiny sizes (LR 8..16) and one exported graph per module: the whole file should take well under 90 s on a CPU."""
import json

import numpy as np
import click
import onnx
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import rrsr_model
from export.check import uses_custom_ops
from export.onnx_export import ExportOptions, export_model
from plugins.ort_library import find_library
from rrsr_model.images import to_uint8
from runtime import sidecar as sc
from runtime.backends import (BackendError, BackendUnavailable, ModelFiles, OrtLoader, Runner, TorchLoader,
                              load_runner, super_resolve)
from runtime.backends.trt_backend import tensorrt_available
from runtime.bench import bench_runner, format_table
from runtime.build_engine import custom_nodes, missing_creators, profile_shapes
from runtime.build_engine import main as build_main
from runtime.infer import main as infer_main
from runtime.parity import main as parity_main
from runtime.parity import passes

LR_HW, SR_HW = (12, 10), (48, 40)
TRT_REASON = tensorrt_available()


def _rand(h, w, seed, c=3):
    return np.random.default_rng(seed).integers(0, 256, (h, w, c) if c else (h, w), dtype=np.uint8)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """On a CPU shared with other jobs, two spinning OpenMP threads run PyTorch up to 40x slower than one
    (measured: 7.4 s vs 0.18 s per forward here); one thread keeps this file fast and its timing stable."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A perturbed random C2-Matching (the smallest variant) as a bundle and its ONNX graph (plugin flavour when
    the ORT custom-op library is built, else the standard flavour stock ONNX Runtime runs), plus images."""
    d = tmp_path_factory.mktemp("runtime")
    torch.manual_seed(0)
    model = rrsr_model.build_model("c2-matching").eval()
    for p in model.net_g.parameters():             # non-zero offsets so the deformable paths matter
        p.data.add_(torch.randn_like(p) * 0.01)
    rrsr_model.save_bundle(model, d / "c2.pth")
    flavour = "plugin" if find_library() else "standard"
    proto = export_model(model, ExportOptions(flavour=flavour, lr_size=(12, 12), min_lr=8, max_lr=32))
    onnx.save(proto, str(d / "c2.onnx"))
    imgs = {"lr": _rand(*LR_HW, 1), "ref": _rand(*SR_HW, 2), "hr": _rand(*SR_HW, 3),
            "ref_big": _rand(SR_HW[0] + 9, SR_HW[1] + 6, 4),            # forces padding (valid_size)
            "gray": _rand(*LR_HW, 5, c=0), "rgba": _rand(*LR_HW, 6, c=4), "ref_tiny": _rand(8, 8, 7)}
    for k, a in imgs.items():
        Image.fromarray(a).save(d / f"{k}.png")
    return {"dir": d, "ckpt": d / "c2.pth", "onnx": d / "c2.onnx", "model": model, "imgs": imgs,
            "custom": uses_custom_ops(proto)}


@pytest.fixture(scope="module")
def ort_runner(files):
    with OrtLoader(files["onnx"], device="cpu").load() as r:
        yield r


@pytest.fixture(scope="module")
def torch_runner(files):
    with TorchLoader(files["ckpt"], device="cpu").load() as r:
        yield r


def _invoke(cmd, args, **kw):
    return CliRunner().invoke(cmd, [str(a) for a in args], catch_exceptions=False, **kw)


# -- backends ------------------------------------------------------------------------------------------------

def test_backends_match_super_resolve(files, ort_runner, torch_runner):
    lr, ref = files["imgs"]["lr"], files["imgs"]["ref_big"]
    want = rrsr_model.super_resolve(torch_runner.model, lr, ref)     # the numerical source of truth
    t = super_resolve(torch_runner, lr, ref).sr
    o = super_resolve(ort_runner, lr, ref).sr
    assert t.shape == o.shape == (3, *SR_HW) and o.dtype == np.float32
    assert np.abs(t - want).max() <= 1e-5
    assert np.abs(o - want).max() <= 1e-4
    assert ort_runner.describe()["backend"] == "ort" and ort_runner.describe()["precision"] == "fp32"
    assert torch_runner.describe()["device"] == "cpu"


def test_auto_picks_the_fastest_available_and_says_why(files):
    c = load_runner("auto", ModelFiles(onnx=str(files["onnx"]), ckpt=str(files["ckpt"])), "auto")
    assert c.reason.startswith("ort-cpu") or c.reason.startswith(("trt", "ort-cuda", "torch-cuda"))
    if not torch.cuda.is_available():
        assert c.reason.startswith("ort-cpu") and any(s.startswith("torch-cuda") for s in c.skipped)
    with pytest.raises(BackendError, match="needs --engine"):
        load_runner("trt", ModelFiles(onnx=str(files["onnx"])))


# -- infer -----------------------------------------------------------------------------------------------------

def test_infer_png_and_npy_through_ort_and_torch(files, tmp_path):
    d = files["dir"]
    common = ["--lr", d / "lr.png", "--ref", d / "ref.png", "--quiet"]
    r = _invoke(infer_main, common + ["--out", tmp_path / "ort.npy", "--onnx", files["onnx"], "--backend", "ort"])
    assert r.exit_code == 0, r.output
    r = _invoke(infer_main, common + ["--out", tmp_path / "ort.png", "--onnx", files["onnx"], "--backend", "ort"])
    assert r.exit_code == 0, r.output
    r = _invoke(infer_main, common + ["--out", tmp_path / "torch.npy", "--ckpt", files["ckpt"], "--backend", "torch"])
    assert r.exit_code == 0, r.output
    o, t = np.load(tmp_path / "ort.npy"), np.load(tmp_path / "torch.npy")
    assert o.shape == t.shape == (3, *SR_HW) and o.dtype == np.float32
    assert np.abs(o - t).max() <= 1e-4
    png = np.asarray(Image.open(tmp_path / "ort.png"))
    assert png.dtype == np.uint8 and png.shape == (*SR_HW, 3)
    assert np.abs(png.astype(int) - to_uint8(o).astype(int)).max() <= 1      # same clamp + round


def test_ort_threads_option_gives_the_same_sr(files, ort_runner):
    """OrtLoader(threads=1): ORT's intra-op pool of one thread (the custom ops' CPU kernels run on it too), the same
    SR bit for bit as ORT's default pool (the kernels are deterministic for any thread count)."""
    lr, ref = files["imgs"]["lr"], files["imgs"]["ref"]
    with OrtLoader(files["onnx"], device="cpu", threads=1).load() as one:
        assert one.describe()["intra_op_threads"] == 1
        got = super_resolve(one, lr, ref).sr
    assert np.array_equal(got, super_resolve(ort_runner, lr, ref).sr)


def test_memory_estimate_knows_the_compiled_kernels():
    """1080p output (LR 270x480) on an 8 GiB device: the FP16 policy fits with the compiled kernels (measured 3.4 GiB
    on an H200) but not on PyTorch's reference ops (measured 7.7 GiB); the estimates bound those measurements."""
    from runtime.memory import check_fits, torch_bytes
    lr = (270, 480)
    assert 3571 * 2 ** 20 < torch_bytes(lr, precision="fp16", kernels="compiled") < 4.5 * 2 ** 30
    assert 7931 * 2 ** 20 < torch_bytes(lr, precision="fp16", kernels="reference")
    assert 8362 * 2 ** 20 < torch_bytes(lr, precision="fp32", kernels="reference")
    check_fits("torch", "fp16", "cuda", lr, available=8 * 2 ** 30, kernels="compiled")
    with pytest.raises(MemoryError, match="PyTorch needs about"):
        check_fits("torch", "fp16", "cuda", lr, available=8 * 2 ** 30, kernels="reference")


def test_torch_kernels_choice(files, torch_runner, tmp_path):
    """--torch-kernels: auto keeps PyTorch's ops off CUDA (and for FP32); compiled is refused with the reason where
    the CUDA kernels cannot run; an unknown value is an error naming the choices."""
    assert torch_runner.describe()["kernels"] == "reference"
    with pytest.raises(BackendUnavailable, match="compiled kernels are CUDA kernels, the device is cpu"):
        TorchLoader(files["ckpt"], device="cpu", kernels="compiled").load()
    with pytest.raises(BackendError, match="unknown kernels 'fast'"):
        TorchLoader(files["ckpt"], kernels="fast")
    d = files["dir"]
    r = _invoke(infer_main, ["--lr", d / "lr.png", "--ref", d / "ref.png", "--quiet", "--out", tmp_path / "x.npy",
                             "--ckpt", files["ckpt"], "--backend", "torch", "--device", "cpu",
                             "--torch-kernels", "compiled"])
    assert r.exit_code != 0 and "CUDA kernels" in r.output and not (tmp_path / "x.npy").exists()


def test_infer_folder_mode_and_force(files, tmp_path):
    lr_dir, ref_dir, out = tmp_path / "lr", tmp_path / "ref", tmp_path / "out"
    lr_dir.mkdir(), ref_dir.mkdir()
    for i in range(2):
        Image.fromarray(_rand(8 + i, 9, 10 + i)).save(lr_dir / f"im{i}.png")
        Image.fromarray(_rand(4 * (8 + i), 36, 20 + i)).save(ref_dir / f"im{i}.png")
    args = ["--lr", lr_dir, "--ref", ref_dir, "--out", out, "--onnx", files["onnx"], "--format", "npy"]
    r = _invoke(infer_main, args)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == ["im0.npy", "im1.npy"]
    assert np.load(out / "im1.npy").shape == (3, 36, 36)
    before = (out / "im0.npy").read_bytes()
    r = _invoke(infer_main, args)
    assert r.exit_code != 0 and "exist" in r.output and "--force" in r.output
    assert (out / "im0.npy").read_bytes() == before
    assert _invoke(infer_main, args + ["--force", "--quiet"]).exit_code == 0


@pytest.fixture()
def sentinel(tmp_path):
    p = tmp_path / "sr.png"
    p.write_bytes(b"previous output")
    return p


def _bad(files, sentinel, extra, lr="lr.png", ref="ref.png"):
    d = files["dir"]
    r = _invoke(infer_main, ["--lr", d / lr, "--ref", d / ref, "--out", sentinel, "--force", "--quiet"] + extra)
    assert r.exit_code != 0
    assert "Traceback" not in r.output
    assert sentinel.read_bytes() == b"previous output"           # never touched by a failed run
    return r.output


def test_infer_errors_name_the_thing(files, sentinel, tmp_path):
    onnx_args = ["--onnx", files["onnx"], "--backend", "ort"]
    assert "'L'" in _bad(files, sentinel, onnx_args, lr="gray.png") and "RGB" in _bad(files, sentinel, onnx_args, lr="gray.png")
    assert "'RGBA'" in _bad(files, sentinel, onnx_args, ref="rgba.png")
    out = _bad(files, sentinel, onnx_args, ref="ref_tiny.png")                    # a size that cannot be handled
    assert "ref_tiny.png" in out and "too small" in out
    missing = tmp_path / "nope.onnx"
    assert f"ONNX file not found: {missing}" in _bad(files, sentinel, ["--onnx", missing])
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07garbage, not a protobuf" * 50)
    out = _bad(files, sentinel, ["--onnx", corrupt])
    assert str(corrupt) in out and ("corrupt" in out or "cannot" in out)
    assert "--engine, --onnx or --ckpt" in _bad(files, sentinel, [])
    assert "checkpoint" in _bad(files, sentinel, ["--ckpt", corrupt, "--backend", "torch"])
    # an existing output without --force is refused before any work
    r = _invoke(infer_main, ["--lr", files["dir"] / "lr.png", "--ref", files["dir"] / "ref.png", "--out", sentinel] + onnx_args)
    assert r.exit_code != 0 and "--force" in r.output and sentinel.read_bytes() == b"previous output"


def test_infer_missing_plugin_library(files, sentinel, monkeypatch, tmp_path):
    if not files["custom"]:
        pytest.skip("the ORT custom-op library is not built, so the graph was exported without custom nodes")
    monkeypatch.setenv("RRSR_ORT_OPS_LIB", str(tmp_path / "missing_lib.so"))
    out = _bad(files, sentinel, ["--onnx", files["onnx"]])
    assert "RRSR_ORT_OPS_LIB" in out and "missing_lib.so" in out and "custom-op library" in out


def test_infer_refuses_inputs_too_large_for_memory(files, sentinel, monkeypatch):
    monkeypatch.setattr("runtime.memory.available_bytes", lambda device="cpu": 2 ** 20)
    out = _bad(files, sentinel, ["--onnx", files["onnx"]])
    if files["custom"]:        # plugin graph: one streaming RrsrPatchMatch node, memory ~linear in h*w
        assert "the graph needs about" in out and "matching is streamed" in out and "GiB" in out
    else:
        assert "dense matching matrix" in out and "(h*w)^2*4" in out and "GiB" in out
    from runtime.memory import check_fits
    with pytest.raises(MemoryError, match=r"\(h\*w\)\^2\*4"):     # standard flavour, LR 256x256: 16 GiB of scores
        check_fits("ort", "fp32", "cpu", (256, 256), available=2 ** 34, matching="dense")
    check_fits("ort", "fp32", "cpu", (256, 256), available=2 ** 34, matching="streaming")


# -- TensorRT (error paths run everywhere; a real engine only where TensorRT and a GPU are) --------------------

def _fake_engine(tmp_path, **over):
    eng = tmp_path / "rrsr.engine"
    eng.write_bytes(b"not really an engine")
    meta = sc.make_sidecar(tensorrt_version="10.3.0", gpu_name="NVIDIA H100", gpu_sm="9.0", precision="fp16",
                           profiles=[{"min": [8, 8], "opt": [16, 16], "max": [32, 32]}],
                           engine_sha256=sc.sha256_file(eng))
    meta.update(over)
    sc.write_sidecar(eng, meta)
    return eng


def test_trt_engine_and_sidecar_errors(files, sentinel, tmp_path):
    trt = ["--backend", "trt"]
    assert "TensorRT engine not found" in _bad(files, sentinel, trt + ["--engine", tmp_path / "none.engine"])
    eng = _fake_engine(tmp_path)
    sc.sidecar_path(eng).unlink()
    assert "sidecar" in _bad(files, sentinel, trt + ["--engine", eng]) and "missing" in _bad(files, sentinel, trt + ["--engine", eng])
    eng = _fake_engine(tmp_path, engine_sha256="0" * 64)
    assert "does not match its sidecar" in _bad(files, sentinel, trt + ["--engine", eng])
    lib = tmp_path / "libplugins.so"
    lib.write_bytes(b"another build")
    eng = _fake_engine(tmp_path, plugin_sha256="f" * 64, plugin_library="/built/libplugins.so")
    out = _bad(files, sentinel, trt + ["--engine", eng, "--plugins", lib])
    assert "not the one the engine was built with" in out and str(lib) in out


@pytest.mark.skipif(TRT_REASON is None, reason="TensorRT and a GPU are present: the not-installed path cannot be shown")
def test_trt_missing_tensorrt_is_a_clear_error(files, sentinel, tmp_path):
    out = _bad(files, sentinel, ["--backend", "trt", "--engine", _fake_engine(tmp_path)])
    assert "TensorRT is not installed" in out or "no CUDA GPU" in out


@pytest.mark.skipif(TRT_REASON is not None, reason=f"TensorRT backend unavailable: {TRT_REASON}")
def test_trt_sidecar_mismatch_is_refused_on_a_gpu(files, sentinel, tmp_path):
    eng = _fake_engine(tmp_path, tensorrt_version="0.0.1")
    assert "built with TensorRT 0.0.1" in _bad(files, sentinel, ["--backend", "trt", "--engine", eng])


def test_sidecar_checks():
    meta = sc.make_sidecar(tensorrt_version="10.3.0", gpu_name="Orin", gpu_sm="8.7", precision="fp32",
                           profiles=[{"min": [8, 8], "opt": [16, 16], "max": [32, 40]}], engine_sha256="x")
    assert sc.environment_mismatches(meta, tensorrt_version="10.3.0", gpu_name="Orin", gpu_sm="8.7") == []
    why = sc.environment_mismatches(meta, tensorrt_version="11.4.0", gpu_name="NVIDIA H100", gpu_sm="9.0")
    assert any("TensorRT 10.3.0" in w and "11.4.0" in w for w in why) and any("SM 8.7" in w and "SM 9.0" in w for w in why)
    assert "same SM" in sc.environment_mismatches(meta, tensorrt_version="10.3.0", gpu_name="Thor", gpu_sm="8.7")[0]
    assert sc.profile_for(meta, (32, 40)) == 0
    with pytest.raises(sc.SidecarError, match=r"LR 33x8 .*8x8\.\.32x40"):
        sc.profile_for(meta, (33, 8))
    sc.check_plugin_library(meta, None)              # no plugins recorded: nothing needed


def test_sidecar_read_errors(tmp_path):
    eng = tmp_path / "e.engine"
    eng.write_bytes(b"x")
    sc.sidecar_path(eng).write_text("{not json")
    with pytest.raises(sc.SidecarError, match="not readable JSON"):
        sc.read_sidecar(eng)
    sc.sidecar_path(eng).write_text(json.dumps({"format": "rrsr-engine-sidecar", "format_version": 1}))
    with pytest.raises(sc.SidecarError, match="lacks tensorrt_version"):
        sc.read_sidecar(eng)


# -- rrsr-build-engine (pure-Python parts and error paths; the build itself needs TensorRT and a GPU) ----------

def test_build_engine_errors(files, tmp_path):
    out = tmp_path / "x.engine"
    r = _invoke(build_main, ["--onnx", tmp_path / "none.onnx", "--out", out])
    assert r.exit_code != 0 and "ONNX file not found" in r.output
    r = _invoke(build_main, ["--onnx", files["onnx"], "--out", out, "--fp16"])
    assert r.exit_code != 0 and "FP32 graph and it records no checkpoint" in r.output
    assert "--precision fp16" in r.output
    small = ["--min-lr", "8x8", "--opt-lr", "12x12", "--max-lr", "16x16"]     # inside the graph's range 8..32
    if files["custom"]:
        r = _invoke(build_main, ["--onnx", files["onnx"], "--out", out, "--plugins", tmp_path / "no_plugins.so"] + small)
        assert r.exit_code != 0 and "no_plugins.so does not exist" in r.output and "RrsrModulatedDeformConv" in r.output
    lib = tmp_path / "plugins.so"
    lib.write_bytes(b"x")
    r = _invoke(build_main, ["--onnx", files["onnx"], "--out", out, "--plugins", lib, "--min-lr", "128x128"])
    assert r.exit_code != 0 and "min <= opt <= max" in r.output
    r = _invoke(build_main, ["--onnx", files["onnx"], "--out", out, "--plugins", lib, "--max-lr", "64x64"])
    assert r.exit_code != 0 and "outside the graph's dynamic range 8..32" in r.output
    r = _invoke(build_main, ["--onnx", files["onnx"], "--out", out, "--mdcn-tactics", "fastest"])
    assert r.exit_code != 0 and "--mdcn-tactics" in r.output and "verified" in r.output
    if TRT_REASON is not None:
        r = _invoke(build_main, ["--onnx", files["onnx"], "--out", out, "--plugins", lib, "--target", "trt"] + small)
        assert r.exit_code != 0 and TRT_REASON.split(";")[0] in r.output
    assert not out.exists()


def test_build_engine_fp16_reexports_the_checkpoint_of_an_fp32_graph(files, tmp_path):
    """`rrsr-export` (FP32 by default) then `rrsr-build-engine --fp16`: the FP16-policy graph is exported from the
    checkpoint the FP32 graph records, once, beside it."""
    from export.metadata import read_metadata, sha256_file, write_metadata
    from runtime.build_engine import fp16_graph_for
    proto = onnx.load(str(files["onnx"]))
    write_metadata(proto, {"ckpt": files["ckpt"].resolve(), "ckpt_sha256": sha256_file(files["ckpt"])})
    fp32 = tmp_path / "rrsr.onnx"
    onnx.save(proto, str(fp32))
    assert fp16_graph_for(fp32, export=False) == tmp_path / "rrsr_fp16.onnx" and not (tmp_path / "rrsr_fp16.onnx").exists()
    logs = []
    target = fp16_graph_for(fp32, log=logs.append)
    meta = read_metadata(target)
    assert target == tmp_path / "rrsr_fp16.onnx" and meta["precision"] == "fp16"
    assert meta["ckpt_sha256"] == sha256_file(files["ckpt"]) and meta["max_lr"] == "32"
    assert fp16_graph_for(fp32, log=logs.append) == target and "using" in logs[-1]     # reused, not re-exported
    assert fp16_graph_for(target) == target                                            # an FP16 graph as it is
    stale = tmp_path / "stale.onnx"
    write_metadata(proto, {"ckpt_sha256": "0" * 64})
    onnx.save(proto, str(stale))
    with pytest.raises(click.ClickException, match="changed since the export"):
        fp16_graph_for(stale)


def test_build_engine_plugin_lookup_names_node_and_op(files):
    proto = onnx.load(str(files["onnx"]), load_external_data=False)
    nodes = custom_nodes(proto)
    if files["custom"]:
        assert nodes and all(ver == "1" and ns == "" for _, _, ver, ns in nodes)
    fake = [("node_mdcn_3", "RrsrModulatedDeformConv", "1", ""), ("node_ras_0", "RrsrRefAwareSelection", "1", "")]
    msgs = missing_creators(fake, lambda op, ver, ns: op == "RrsrModulatedDeformConv")
    assert len(msgs) == 1 and "node_ras_0" in msgs[0] and "RrsrRefAwareSelection" in msgs[0]
    shapes = profile_shapes((8, 8), (16, 12), (32, 32))
    assert shapes["lr"][1] == (1, 3, 16, 12) and shapes["ref"][2] == (1, 3, 128, 128)


# -- parity ----------------------------------------------------------------------------------------------------

def test_parity_cli_report_and_json(files, tmp_path):
    d = files["dir"]
    js = tmp_path / "parity.json"
    r = _invoke(parity_main, ["--ckpt", files["ckpt"], "--onnx", files["onnx"], "--backend", "ort",
                              "--lr", d / "lr.png", "--ref", d / "ref.png", "--hr", d / "hr.png", "--json", js])
    assert r.exit_code == 0, r.output
    assert "PASS" in r.output and "max abs" in r.output
    rep = json.loads(js.read_text())
    assert rep["pass"] is True and rep["backend"]["backend"] == "ort" and rep["reference"]["backend"] == "torch"
    row = rep["images"][0]
    assert row["lr"] == "12x10" and row["max_abs"] <= 1e-4 and row["pass"]
    assert {"mean_abs", "psnr_db", "psnr_y", "ssim_y", "reference_psnr_y", "reference_ssim_y"} <= set(row)
    assert abs(row["psnr_y"] - row["reference_psnr_y"]) < 0.01


class _Off(Runner):
    """Wraps a shared runner (closing it is a no-op) and adds an error, to see parity fail."""

    def __init__(self, inner, delta, precision="fp32"):
        self.inner, self.delta, self.precision = inner, delta, precision

    def run(self, inputs):
        return self.inner.run(inputs) + self.delta

    def describe(self):
        return {**self.inner.describe(), "precision": self.precision}


def test_parity_fails_beyond_the_criteria(files, ort_runner, torch_runner, monkeypatch, tmp_path):
    assert passes("fp16", 1e-2, 60.0) and not passes("fp16", 1e-4, 40.0) and not passes("fp32", 2e-4, 80.0)
    from types import SimpleNamespace

    from runtime import parity as parity_mod
    from runtime.backends import Choice
    # the CLI with the module's runners (no second model load): the backend off by 1e-3 must exit 1
    monkeypatch.setattr(parity_mod, "load_runner", lambda *a: Choice(_Off(ort_runner, 1e-3), "test"))
    monkeypatch.setattr(parity_mod, "TorchLoader", lambda *a, **k: SimpleNamespace(load=lambda: _Off(torch_runner, 0.0)))
    d = files["dir"]
    r = _invoke(parity_main, ["--ckpt", files["ckpt"], "--lr", d / "lr.png", "--ref", d / "ref_big.png",
                              "--json", tmp_path / "p.json"])
    assert r.exit_code == 1 and "FAIL" in r.output
    rep = json.loads((tmp_path / "p.json").read_text())
    assert rep["pass"] is False and abs(rep["images"][0]["max_abs"] - 1e-3) < 1e-5         # FP32: 1e-3 > 1e-4


# -- bench -----------------------------------------------------------------------------------------------------

def test_bench_rows(ort_runner, monkeypatch):
    rows = bench_runner(ort_runner, [(8, 8), (9, 12)], warmup=1, runs=2)
    assert [r.lr for r in rows] == ["8x8", "9x12"]
    for r in rows:
        assert r.median_ms > 0 and r.p90_ms >= r.median_ms and r.images_per_s > 0 and r.runs == 2
        assert r.mem_method.startswith("RSS") and r.peak_mem_mib >= 0
    assert "median ms" in format_table(rows) and "ort-cpu" in format_table(rows)
    monkeypatch.setattr("runtime.memory.available_bytes", lambda device="cpu": 2 ** 20)
    (row,) = bench_runner(ort_runner, [(8, 8)], warmup=0, runs=1)
    assert row.median_ms is None and row.note.startswith("skipped") and "skipped" in format_table([row])


# -- demo (the export + samples run is the README's job; here its checkpoint handling) ----------------------

def test_demo_missing_checkpoint_is_a_clear_error(tmp_path):
    from runtime.demo import main as demo_main
    r = _invoke(demo_main, ["--ckpt", tmp_path / "demo_rrsr.pth", "--out", tmp_path / "out"])
    assert r.exit_code != 0 and "checkpoint not found" in r.output and "demo_rrsr.pth" in r.output


def test_demo_exports_once_per_checkpoint(files, tmp_path, monkeypatch):
    from runtime import demo
    calls = []
    proto = onnx.load(str(files["onnx"]))

    def fake_export(model, opts, verbose=False):
        calls.append(opts.flavour)
        return proto
    monkeypatch.setattr("export.onnx_export.export_model", fake_export)
    logs = []
    path, rec = demo.export_once(files["ckpt"], tmp_path, log=logs.append)
    assert calls and path.is_file() and rec["ckpt_sha256"] == sc.sha256_file(files["ckpt"])
    path, _ = demo.export_once(files["ckpt"], tmp_path, log=logs.append)       # same checkpoint: reused
    assert len(calls) == 1 and logs[-1].startswith("reusing")
    other = tmp_path / "other.pth"
    other.write_bytes(files["ckpt"].read_bytes() + b"\0")                         # another hash: exported again
    monkeypatch.setattr("rrsr_model.checkpoint.load_model", lambda p: files["model"])
    demo.export_once(other, tmp_path, log=logs.append)
    assert len(calls) == 2


@pytest.mark.skipif(TRT_REASON is not None, reason=f"TensorRT backend unavailable: {TRT_REASON}")
def test_trt_engine_matches_ort(files, tmp_path):
    from runtime.backends.trt_backend import default_plugin_library
    eng = tmp_path / "c2.engine"
    r = _invoke(build_main, ["--onnx", files["onnx"], "--out", eng, "--min-lr", "8x8", "--opt-lr", "12x12",
                             "--max-lr", "16x16", "--plugins", default_plugin_library()])
    assert r.exit_code == 0, r.output
    d = files["dir"]
    for backend, extra in (("trt", ["--engine", eng]), ("ort", ["--onnx", files["onnx"]])):
        r = _invoke(infer_main, ["--lr", d / "lr.png", "--ref", d / "ref.png", "--out", tmp_path / f"{backend}.npy",
                                 "--backend", backend] + extra)
        assert r.exit_code == 0, r.output
    assert np.abs(np.load(tmp_path / "trt.npy") - np.load(tmp_path / "ort.npy")).max() <= 1e-4


def test_feeds_round_trip_and_folder_pairing(tmp_path):
    from rrsr_model.inference import prepare_inputs
    from runtime.backends import to_feeds
    from runtime.backends.base import to_prepared
    x = prepare_inputs(_rand(8, 9, 1), _rand(36, 40, 2))                      # padded: valid_size set
    f = to_feeds(x)
    assert f["valid_size"].tolist() == [32, 36] and f["lr"].dtype == np.float32 and f["ref"].shape == (1, 3, 36, 40)
    assert to_prepared(f).out_hw == (32, 36) and to_prepared(f).valid_size is not None
    y = prepare_inputs(_rand(8, 9, 1), _rand(32, 36, 2))                      # not padded: the full size
    assert to_feeds(y)["valid_size"].tolist() == [32, 36] and to_prepared(to_feeds(y)).valid_size is None
    lr_dir, ref_dir = tmp_path / "lr", tmp_path / "ref"
    lr_dir.mkdir(), ref_dir.mkdir()
    Image.fromarray(_rand(8, 8, 0)).save(lr_dir / "a.png")
    Image.fromarray(_rand(8, 8, 0)).save(lr_dir / "b.png")
    Image.fromarray(_rand(32, 32, 0)).save(ref_dir / "a.jpg")
    r = _invoke(infer_main, ["--lr", lr_dir, "--ref", ref_dir, "--out", tmp_path / "out", "--onnx", "x.onnx"])
    assert r.exit_code != 0 and "no reference" in r.output and "b.png" in r.output
    assert not (tmp_path / "out").exists()
