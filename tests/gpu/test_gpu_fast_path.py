"""The fast path (runtime.fast_path) on CUDA: torch.compile per stage + one CUDA graph per input shape, with the
project's kernels (FP16 policy) and with the reference ops (FP32), against the eager FP32 model.

Compiles cost tens of seconds each on the GPU machine: one model per precision, two shapes (static, then dynamic)."""
import pytest
import torch
import torch.nn.functional as F

import rrsr_model
from export.matching import fixed_index_kernel, matching_kernel
from rrsr_model.demo import DEMO_CKPT
from rrsr_model.precision import to_fp16
from runtime.fast_path import FastRRSR, compile_unavailable, strict_fp32_math


def _inputs(h, w, seed):
    g = torch.Generator().manual_seed(seed)
    lr = F.interpolate(torch.rand(1, 3, h // 4, w // 4, generator=g), size=(h, w), mode="bicubic",
                       align_corners=False).clamp(0, 1)
    lr_up = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    ref = torch.roll(lr_up, shifts=(5, -7), dims=(2, 3)).flip(3).contiguous()
    return lr.cuda(), lr_up.cuda(), ref.cuda()


def _psnr(a, b):
    mse = (a.float().clamp(0, 1) - b.float().clamp(0, 1)).pow(2).mean().item()
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


@pytest.fixture(scope="module")
def fp32_model(ext):
    why = compile_unavailable("cuda")
    if why:
        pytest.skip(why)
    torch.manual_seed(0)
    return rrsr_model.load_model(DEMO_CKPT, device="cuda").eval()


def _reference(model, x, valid=None):
    """Eager FP32 with the reference ops (nothing routes them to plugins/torch here), TF32 off."""
    with torch.no_grad(), strict_fp32_math():
        return model(*x, valid)


def test_fp16_fast_path_graphs_replay_fresh_inputs_and_meet_45_db(fp32_model):
    import copy

    import plugins.torch as pt
    model = to_fp16(copy.deepcopy(fp32_model))
    log = []
    fast = FastRRSR(model, "cuda", max_graphs=2, kernels_context=lambda: pt.kernels(True), log=log.append)
    assert "CUDA graphs per input shape (up to 2)" in fast.describe()
    shapes = [(24, 32), (20, 28), (24, 32)]
    for i, (h, w) in enumerate(shapes):
        for seed in (10 * i, 10 * i + 1):          # a second input of the same shape: the graph must not be stale
            x = _inputs(h, w, seed)
            want = _reference(fp32_model, x)
            got = fast(*(t.half() for t in x))
            p = _psnr(got, want)
            assert p >= 45.0, f"LR {h}x{w} seed {seed}: {p:.2f} dB against FP32"
    assert sum("new shape" in m for m in log) == 2, log          # the third call's shape was still cached
    assert list(fast.graphs.entries) and fast.graphs.evicted == 0
    assert "CUDA graphs off" not in fast.describe(), fast.describe()


def test_fp32_fast_path_within_1e4_and_padded_inputs(fp32_model):
    import copy
    log = []
    model = copy.deepcopy(fp32_model)
    fast = FastRRSR(model, "cuda", max_graphs=1, fp32_math=True, log=log.append)
    for (h, w), valid in (((24, 32), None), ((24, 32), torch.tensor([88, 120])), ((16, 20), None)):
        x = _inputs(h, w, h + w)
        vs = None if valid is None else valid.cuda()
        # the reference with the fast path's own correspondence (near-ties may flip: export.matching)
        index = fast.match_index(x[1], x[2]).cpu().numpy()
        with matching_kernel(fixed_index_kernel(index), "cuda"):
            want = _reference(model, x, vs)
        got = fast(*x, vs)
        err = (got - want).abs().max().item()
        assert err <= 1e-4, f"LR {h}x{w} valid {valid}: max abs {err:.2e}"
    assert fast.graphs.evicted == 2                   # one graph at a time: each new key evicted the last
