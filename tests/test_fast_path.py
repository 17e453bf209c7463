"""The PyTorch fast path (runtime.fast_path, ``--compile``) on the CPU: inductor's C++ backend compiles the model's
stages, the custom ops stay opaque, and the result is held to the FP32 model. CUDA graphs are tested in tests/gpu."""
import json
import shutil

import pytest
import torch
from click.testing import CliRunner

import rrsr_model
from export.onnx_export import sample_inputs
from rrsr_model.demo import DEMO_CKPT
from runtime import fast_path
from runtime.fast_path import FastRRSR, GraphCache

needs_compiler = pytest.mark.skipif(fast_path.compile_unavailable("cpu") is not None,
                                    reason=f"{fast_path.compile_unavailable('cpu')}")


def test_graph_cache_evicts_the_least_recently_used():
    made = []
    cache = GraphCache(max_entries=2)
    for key in ["a", "b", "a", "c", "b"]:
        cache.get(key, lambda key=key: made.append(key) or key.upper())
    # a, b made; a reused (now most recent); c evicts b; b made again, evicting a
    assert made == ["a", "b", "c", "b"]
    assert list(cache.entries) == ["c", "b"] and cache.evicted == 2
    assert cache.get("c", lambda: pytest.fail("c is cached")) == ("C", False)
    with pytest.raises(ValueError, match="at least one entry"):
        GraphCache(0)


def test_without_a_compiler_it_runs_eager_and_says_why(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    logged = []
    torch.manual_seed(0)
    model = rrsr_model.build_model("rrsr").eval()
    fast = FastRRSR(model, "cpu", log=logged.append)
    assert "needs a C++ compiler" in fast.describe() and "eager PyTorch" in fast.describe()
    assert any("not compiled" in m for m in logged)
    lr, lr_up, ref, vs = sample_inputs(1, (8, 12), seed=3)
    with torch.no_grad():
        want = model(lr, lr_up, ref, vs)
    assert torch.equal(fast(lr, lr_up, ref, vs), want)
    with pytest.raises(ValueError, match="ref must be"):      # the model's own input checks still apply
        fast(lr, lr_up, ref[..., :-4], vs)


@needs_compiler
def test_parity_cli_with_compile_meets_the_fp32_criterion(tmp_path):
    """The user's command: runtime.parity --backend torch --compile on the bundled samples (one shape, one compile),
    against the eager PyTorch FP32 model; the command itself fails (exit 1) beyond 1e-4 max abs, or when the fast
    path's correspondence (fed to the reference, as for ORT graphs) differs from PyTorch's beyond near-ties."""
    from runtime.parity import main
    out = tmp_path / "parity.json"
    res = CliRunner().invoke(main, ["--ckpt", str(DEMO_CKPT), "--backend", "torch", "--compile", "--device", "cpu",
                                    "--json", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rep = json.loads(out.read_text())
    assert rep["pass"] and rep["backend"]["compile"].startswith("torch.compile (inductor) per stage")
    assert "no CUDA graphs (the device is cpu)" in rep["backend"]["compile"]
    assert len(rep["images"]) == 2 and max(r["max_abs"] for r in rep["images"]) <= 1e-4
    assert all(r["matching"]["near_ties_only"] for r in rep["images"])
    # the first call of the shape compiled, and said so (stderr); the second image reused it
    assert res.output.count("fast path: new shape, LR 48x64: compile took") == 1


def test_bench_times_the_fast_path_first_call_apart(monkeypatch):
    """runtime.bench's fast-path rows: the first call per size (compile / capture) is timed apart from the runs.
    Compiling is switched off here (its cost is the parity test's); the row code is the same either way."""
    from runtime.backends import TorchLoader
    from runtime.bench import bench_runner, format_table
    monkeypatch.setattr(fast_path, "compile_unavailable", lambda device: "switched off for this test")
    with TorchLoader(str(DEMO_CKPT), device="cpu", compile=True).load() as runner:
        assert "switched off for this test" in runner.describe()["compile"]
        (row,) = bench_runner(runner, [(8, 8)], warmup=0, runs=1)
    assert row.backend == "torch-cpu+compile" and row.first_call_s > 0 and row.median_ms > 0
    assert "torch-cpu+compile" in format_table([row]) and "1st call s" in format_table([row])


def test_bench_model_script_runs_on_the_cpu(tmp_path):
    """scripts/bench_model.py end to end at a tiny size on the CPU (path a: eager, no compile; FP16 emulation on the
    CPU would take minutes), so a bug in its bookkeeping fails here rather than in scarce GPU time; the figures
    themselves mean nothing here."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import bench_model
    out = tmp_path / "bm.json"
    result = bench_model.main(["--device", "cpu", "--sizes", "8x8", "--paths", "a", "--iters", "1",
                               "--json", str(out)])
    (size,) = result["sizes"]
    a = size["paths"]["a"]
    assert a["max_abs"] == 0.0 and a["psnr_db"] == float("inf")          # (a) on the CPU is the reference itself
    assert set(a["stages_ms"]) == {"ccn", "matching", "vgg19", "trunk"}
    assert all(v > 0 for v in a["stages_ms"].values()) and a["total_ms"] > 0
    assert json.loads(out.read_text())["sizes"][0]["lr"] == [8, 8]
    assert "(a) eager FP32" in bench_model.format_size_table(size)
    with pytest.raises(SystemExit, match="unknown path"):
        bench_model.main(["--device", "cpu", "--paths", "a,x", "--json", str(out)])
    # the verdicts of a made-up run: each target met or not, from the figures given
    fake = {"sizes": [{"lr": [270, 480], "paths": {
        "a": {"total_ms": 900.0}, "b": {"total_ms": 100.0},
        "d": {"total_ms": 110.0, "stages_ms": {"matching": 30.0}, "peak_mib": 5000.0, "psnr_db": 60.0,
              "max_abs": 1e-3}}}]}
    v = "\n".join(bench_model.verdicts(fake))
    assert "8.18x -> met" in v and "0.91x -> NOT met" in v and "110.0 ms <= 120 ms -> met" in v
    assert "except matching 80.0 ms <= 90 ms -> met" in v and "peak 5000 MiB <= 4096 MiB -> NOT met" in v
