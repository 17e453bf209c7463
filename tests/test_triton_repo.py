"""rrsr-triton-repo: the repository's configs against Triton's model-config protobuf (tritonclient's
``tritonclient.grpc.model_config_pb2``), and its Python pre/post models and ensemble run by the real tritonserver
(nvidia-pytriton's; it has no onnxruntime or TensorRT backend, so there the network step is a Python model running
the same ONNX graph in onnxruntime with the project's library: the ensemble's wiring and the pre/post models are
what runs for real)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="tritonclient[grpc] is not installed "
                                                                  "(pip install -e '.[serve]')")

import tritonclient.http as httpclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from rrsr_model.images import to_uint8  # noqa: E402
from rrsr_model.inference import prepare_inputs  # noqa: E402
from runtime import sidecar as sc  # noqa: E402
from runtime.backends import OrtLoader, super_resolve  # noqa: E402
from runtime.backends.base import to_feeds  # noqa: E402
from runtime.serve_client import make_inputs, super_resolve_remote  # noqa: E402
from runtime.triton_config import (WIRE_INPUTS, WIRE_OUTPUTS, ConfigError, parse_pbtxt, to_pbtxt)  # noqa: E402
from runtime.triton_repo import (ORT, POST, PRE, TRT, TRT_PLUGIN_LIB, check_ensemble, onnx_io,  # noqa: E402
                                 plan_repository, write_repository)
from runtime.triton_repo import main as repo_main  # noqa: E402
from runtime.triton_server import Ports, TritonError, TritonProcess, find_install, free_ports  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 120


def _rand(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _io(entries):
    return [(e.name, e.data_type, list(e.dims)) for e in entries]


def _wire(entries):
    from tritonclient.grpc import model_config_pb2 as pb
    return [(e["name"], pb.DataType.Value(e["data_type"]), e["dims"]) for e in entries]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """A file standing for an engine (none can be built here: no TensorRT) with a real sidecar, and a file
    standing for the plugin library: only what rrsr-triton-repo does with them (configs, copies) is tested."""
    d = tmp_path_factory.mktemp("engine")
    eng, lib = d / "rrsr.engine", d / "librrsr_trt_plugins_dynamic.so"
    eng.write_bytes(b"placeholder engine bytes")
    lib.write_bytes(b"placeholder dynamic plugin library")
    (d / TRT_PLUGIN_LIB).write_bytes(b"placeholder self-registering plugin library")
    sc.write_sidecar(eng, sc.make_sidecar(
        tensorrt_version="10.8.0", gpu_name="NVIDIA H200", gpu_sm="9.0", precision="fp16",
        profiles=[{"min": [8, 8], "opt": [64, 64], "max": [270, 480]}], engine_sha256=sc.sha256_file(eng),
        plugin_library=lib, plugin_sha256=sc.sha256_file(lib)))
    return eng


def test_configs_validate_against_triton_schema(demo_onnx, engine, tmp_path):
    out = tmp_path / "repo"
    plan = plan_repository(engine=engine, onnx=demo_onnx, instances=2, gpus=[0, 1], max_queue_size=8,
                           queue_timeout_ms=500, model_root="/models")
    write_repository(out, plan)
    cfg = {d.name: parse_pbtxt((d / "config.pbtxt").read_text(), str(d)) for d in out.iterdir() if d.is_dir()}
    assert set(cfg) == {"rrsr", PRE, POST, TRT, ORT}
    for name, c in cfg.items():
        assert c.name == name and c.max_batch_size == 0
    ens = cfg["rrsr"]
    assert ens.platform == "ensemble"
    assert _io(ens.input) == _wire(WIRE_INPUTS) and _io(ens.output) == _wire(WIRE_OUTPUTS)
    assert [s.model_name for s in ens.ensemble_scheduling.step] == [PRE, TRT, POST]     # engine given: trt
    trt = cfg[TRT]
    assert trt.platform == "tensorrt_plan" and trt.default_model_filename == "model.plan"
    assert [(g.count, g.kind, list(g.gpus)) for g in trt.instance_group] == [(2, 1, [0, 1])]      # KIND_GPU
    assert trt.dynamic_batching.default_queue_policy.max_queue_size == 8
    assert trt.dynamic_batching.default_queue_policy.default_timeout_microseconds == 500_000
    assert (out / TRT / "1" / "model.plan").read_bytes() == engine.read_bytes()
    assert (out / TRT / TRT_PLUGIN_LIB).is_file()
    assert f"--backend-config=tensorrt,plugins=/models/{TRT}/{TRT_PLUGIN_LIB}" in plan["command"]
    assert plan["command"] in (out / "README.txt").read_text()
    ort = cfg[ORT]
    assert ort.backend == "onnxruntime" and ort.default_model_filename == "model.onnx"
    assert list(ort.model_operations.op_library_filename) == [f"/models/{ORT}/librrsr_ort_ops.so"]
    from plugins.ort_library import find_library
    assert (out / ORT / "librrsr_ort_ops.so").read_bytes() == Path(find_library()).read_bytes()
    ins, outs = onnx_io(demo_onnx)                                   # the config says what the graph has
    assert _io(ort.input) == _wire(ins) and _io(ort.output) == _wire(outs)
    pre = cfg[PRE]
    assert pre.backend == "python"
    assert pre.parameters["min_lr"].string_value == "8x8" and pre.parameters["max_lr"].string_value == "270x480"
    for m in (PRE, POST):
        assert (out / m / "1" / "rrsr_preprocess.py").read_text() == (REPO_ROOT / "rrsr_model" / "preprocess.py").read_text()
    check_ensemble(plan["models"])


def test_schema_and_wiring_errors_name_the_problem(demo_onnx):
    with pytest.raises(ConfigError, match="no field named \"instance_groups\""):
        to_pbtxt({"name": "m", "instance_groups": []})
    with pytest.raises(ConfigError, match="KIND_TPU"):
        to_pbtxt({"name": "m", "instance_group": [{"count": 1, "kind": "KIND_TPU"}]})
    with pytest.raises(ConfigError, match="m.pbtxt"):
        parse_pbtxt('name: "m"\nmax_batch_size: "four"\n', "m.pbtxt")
    plan = plan_repository(onnx=demo_onnx, device_kind="cpu")
    models = json.loads(json.dumps(plan["models"]))
    models[POST]["input"][0]["data_type"] = "TYPE_FP16"
    with pytest.raises(ConfigError, match="ensemble step 'rrsr_post': input 'sr_padded' is TYPE_FP16"):
        check_ensemble(models)
    models = json.loads(json.dumps(plan["models"]))
    models["rrsr"]["ensemble_scheduling"]["step"][1]["input_map"].pop("ref")
    with pytest.raises(ConfigError, match="ensemble step 'rrsr_ort' maps inputs"):
        check_ensemble(models)


def test_cli_refusals(demo_onnx, engine, tmp_path):
    r = CliRunner().invoke(repo_main, ["--out", str(tmp_path / "a")])
    assert r.exit_code != 0 and "give --engine" in r.output
    r = CliRunner().invoke(repo_main, ["--out", str(tmp_path / "a"), "--onnx", str(demo_onnx), "--net", "trt"])
    assert r.exit_code != 0 and "--net trt needs --engine" in r.output
    r = CliRunner().invoke(repo_main, ["--out", str(tmp_path / "a"), "--onnx", str(tmp_path / "nope.onnx")])
    assert r.exit_code != 0 and "ONNX file not found" in r.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    r = CliRunner().invoke(repo_main, ["--out", str(tmp_path / "full"), "--onnx", str(demo_onnx)])
    assert r.exit_code != 0 and "pass --force" in r.output
    r = CliRunner().invoke(repo_main, ["--out", str(tmp_path / "full"), "--onnx", str(demo_onnx), "--force"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep"            # only its own models are replaced
    bad = tmp_path / "bad.engine"
    shutil.copyfile(engine, bad)
    shutil.copyfile(sc.sidecar_path(engine), sc.sidecar_path(bad))
    bad.write_bytes(b"truncated")
    r = CliRunner().invoke(repo_main, ["--out", str(tmp_path / "b"), "--engine", str(bad)])
    assert r.exit_code != 0 and "does not match its sidecar" in r.output
    r = CliRunner().invoke(repo_main, ["--out", str(tmp_path / "c"), "--engine", str(engine), "--gpus", "0,x"])
    assert r.exit_code != 0 and "comma-separated GPU ids" in r.output


STANDIN = '''"""Test stand-in for rrsr_ort (this tritonserver has no onnxruntime backend): the same graph in onnxruntime with
the project's custom-op library, behind the config rrsr-triton-repo wrote for rrsr_ort."""
import os
import onnxruntime as ort
import triton_python_backend_utils as pb

class TritonPythonModel:
    def initialize(self, args):
        so = ort.SessionOptions()
        so.register_custom_ops_library({lib!r})
        self.session = ort.InferenceSession(os.path.join(os.path.dirname(__file__), "model.onnx"), so,
                                            providers=["CPUExecutionProvider"])

    def execute(self, requests):
        out = []
        for r in requests:
            feeds = {{n: pb.get_input_tensor_by_name(r, n).as_numpy() for n in ("lr", "lr_up", "ref", "valid_size")}}
            out.append(pb.InferenceResponse([pb.Tensor("sr", self.session.run(["sr"], feeds)[0])]))
        return out
'''


@pytest.fixture(scope="module")
def triton_repo_server(demo_onnx, tmp_path_factory):
    try:
        find_install()
    except TritonError as e:
        pytest.skip(str(e))
    from plugins.ort_library import find_library
    d = tmp_path_factory.mktemp("triton-repo")
    repo = d / "models"
    plan = plan_repository(onnx=demo_onnx, device_kind="cpu", prepost_instances=1)
    write_repository(repo, plan)
    standin = dict(plan["models"][ORT], backend="python")
    for k in ("model_operations", "default_model_filename"):
        standin.pop(k, None)
    (repo / ORT / "config.pbtxt").write_text(to_pbtxt(standin))
    (repo / ORT / "1" / "model.py").write_text(STANDIN.format(lib=find_library()))
    server = TritonProcess(repo, d, Ports(*free_ports(3)), exit_timeout=5)
    server.start(timeout=240)
    client = httpclient.InferenceServerClient(server.url, connection_timeout=TIMEOUT_S, network_timeout=TIMEOUT_S)
    yield server, client
    client.close()
    server.stop()


def _infer(client, model, outputs, **arrays):
    r = client.infer(model, make_inputs(**arrays), outputs=[httpclient.InferRequestedOutput(o) for o in outputs])
    return {o: r.as_numpy(o) for o in outputs}


@pytest.mark.parametrize("lr_hw,ref_hw", [((12, 16), (48, 64)), ((12, 10), (57, 46))])   # exact 4x; padded
def test_pre_model_in_tritonserver_equals_prepare_inputs(triton_repo_server, lr_hw, ref_hw):
    _, client = triton_repo_server
    lr, ref = _rand(*lr_hw, 1), _rand(*ref_hw, 2)
    got = _infer(client, PRE, ("lr", "lr_up", "ref", "valid_size"), lr=lr, ref=ref)
    want = to_feeds(prepare_inputs(lr, ref))
    for k in want:
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape, k
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_post_model_in_tritonserver_crops_and_rounds(triton_repo_server):
    _, client = triton_repo_server
    sr = np.random.default_rng(3).normal(0.5, 0.4, (1, 3, 60, 48)).astype(np.float32)   # values outside [0, 1]
    got = _infer(client, POST, ("sr", "sr_float"), sr_padded=sr, valid_size=np.array([52, 40], np.int64))
    np.testing.assert_array_equal(got["sr_float"], sr[0, :, :52, :40])
    np.testing.assert_array_equal(got["sr"], to_uint8(sr[0, :, :52, :40]))
    with pytest.raises(InferenceServerException, match=r"valid_size \[61, 40\] do not fit"):
        _infer(client, POST, ("sr",), sr_padded=sr, valid_size=np.array([61, 40], np.int64))


def test_ensemble_in_tritonserver_matches_the_direct_runner(triton_repo_server, demo_onnx):
    server, client = triton_repo_server
    with OrtLoader(demo_onnx, device="cpu").load() as direct:
        for lr, ref in ((_rand(12, 12, 4), _rand(48, 48, 5)), (_rand(10, 12, 6), _rand(45, 50, 7))):
            sr, sr_float = super_resolve_remote(client, lr, ref, timeout_s=TIMEOUT_S)
            want = super_resolve(direct, lr, ref).sr
            assert sr_float.shape == want.shape == (3, 4 * lr.shape[0], 4 * lr.shape[1])
            assert float(np.abs(sr_float - want).max()) <= 1e-6
            np.testing.assert_array_equal(sr, to_uint8(want))
    with pytest.raises(InferenceServerException, match="lr: 2x2 is too small"):
        super_resolve_remote(client, _rand(2, 2, 8), _rand(48, 48, 9))
    with pytest.raises(InferenceServerException, match="ref: 8x8 is too small"):
        super_resolve_remote(client, _rand(12, 12, 8), _rand(8, 8, 9))
    assert server.alive() and server.ready()
    client.close()                  # Triton waits for open connections (keep-alive too) before it unloads
    assert server.stop() == 0
