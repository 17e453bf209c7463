"""The whole RRSR model on CUDA: compiled kernels (plugins.torch.register()) vs the PyTorch reference kernels."""
import torch
import torch.nn.functional as F

import rrsr_model
from rrsr_model.ops import patch_match as pm_ops


def _inputs(h=24, w=32, seed=0):
    # smooth image-like inputs: bicubic-upsampled noise, reference = a shifted copy (realistic matches, few ties)
    g = torch.Generator().manual_seed(seed)
    lr = F.interpolate(torch.rand(1, 3, h // 4, w // 4, generator=g), size=(h, w), mode="bicubic",
                       align_corners=False).clamp(0, 1)
    lr_up = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    ref = torch.roll(lr_up, shifts=(5, -7), dims=(2, 3)).flip(3)
    return lr.cuda(), lr_up.cuda(), ref.cuda()


def test_model_with_compiled_kernels_matches_reference(ext):
    import plugins.torch as pt
    torch.manual_seed(0)
    model = rrsr_model.build_model("rrsr").cuda().eval()
    lr, lr_up, ref = _inputs()
    calls = {"n": 0, "flips": 0}
    try:
        pt.unregister()
        with torch.no_grad():
            want = model(lr, lr_up, ref)
        pt.register()
        kernel = pm_ops.registered_kernel("cuda")
        real = pt._module

        class Counting:  # counts the extension's entry points the model reaches (not the reference fallbacks)
            def __getattr__(self, name):
                fn = getattr(real, name)

                def call(*a):
                    calls[name] = calls.get(name, 0) + 1
                    return fn(*a)
                return call
        pt._module = Counting()

        def counting(*a):  # proves the model really went through the compiled PatchMatch; counts index flips
            calls["n"] += 1
            idx, score = kernel(*a)
            calls["flips"] += int((idx != pm_ops.patch_match_reference(*a)[0]).sum())
            return idx, score
        pm_ops.use_kernel("cuda", counting)
        with torch.no_grad():
            got = model(lr, lr_up, ref)
        torch.cuda.synchronize()
    finally:
        pt._module = real if "real" in locals() else pt._module
        pt.unregister()
    d = (got - want).abs()
    frac = (d > 1e-3).float().mean().item()
    print(f"model fp32 compiled vs reference: max {d.max().item():.3g}, mean {d.mean().item():.3g}, "
          f"fraction > 1e-3: {frac:.2e}, calls {calls}")
    # the "rrsr" variant has DCN alignment (MDCN), RAS blocks and one matching stage: all must hit the kernels
    assert calls["n"] >= 1 and calls.get("patch_match_forward", 0) >= 1
    assert calls.get("mdcn_forward", 0) >= 1 and calls.get("ras_forward", 0) >= 1
    assert got.shape == want.shape and torch.isfinite(got).all()
    if calls["flips"] == 0:
        assert d.max().item() <= 1e-3 and d.mean().item() <= 1e-4
    else:  # a PatchMatch near-tie (checked in test_gpu_kernels) moves a local region; the rest must agree
        assert frac <= 2e-2 and d.mean().item() <= 1e-3


def test_model_fp16_with_compiled_kernels_close_to_fp32(ext):
    """The FP16 policy with the compiled kernels (tensor-core MDCN and PatchMatch) against the FP32 reference path,
    next to the same FP16 policy on PyTorch's reference kernels: ours must be no worse than a few dB below it."""
    import math

    import plugins.torch as pt
    from rrsr_model.precision import to_fp16

    def psnr(a, b):
        mse = (a.float().clamp(0, 1) - b.float().clamp(0, 1)).pow(2).mean().item()
        return float("inf") if mse == 0 else 10 * math.log10(1 / mse)

    torch.manual_seed(0)
    model = rrsr_model.build_model("rrsr").cuda().eval()
    lr, lr_up, ref = _inputs(40, 48)
    try:
        pt.unregister()
        with torch.no_grad():
            want = model(lr, lr_up, ref).float()
            to_fp16(model)
            ref16 = model(lr.half(), lr_up.half(), ref.half()).float()
            pt.register()
            got = model(lr.half(), lr_up.half(), ref.half())
        torch.cuda.synchronize()
    finally:
        pt.unregister()
    # the FP16 policy adds the trunk's residual to the FP32 bilinear skip: the SR leaves the model in FP32
    assert got.dtype == torch.float32 and torch.isfinite(got).all()
    p_ours, p_ref16 = psnr(got, want), psnr(ref16, want)
    print(f"model fp16 vs fp32 reference: compiled kernels {p_ours:.2f} dB (max abs {(got - want).abs().max():.3g}), "
          f"PyTorch fp16 reference kernels {p_ref16:.2f} dB (max abs {(ref16 - want).abs().max():.3g})")
    assert p_ours >= min(p_ref16 - 3.0, 40.0)


def test_torch_backend_uses_the_compiled_kernels_for_fp16(ext):
    """runtime's torch backend: --torch-kernels auto means the compiled kernels for the FP16 policy on CUDA, and
    its SR agrees with the same backend on PyTorch's reference ops."""
    import numpy as np

    from rrsr_model.demo import DEMO_CKPT, sample_pairs
    from rrsr_model.images import load_rgb
    from runtime.backends import TorchLoader

    _, lr_path, ref_path, _ = sample_pairs()[0]
    inputs = rrsr_model.prepare_inputs(load_rgb(lr_path), load_rgb(ref_path))
    outs = {}
    for kernels in ("auto", "reference"):
        with TorchLoader(str(DEMO_CKPT), precision="fp16", device="cuda", kernels=kernels).load() as runner:
            outs[kernels] = (runner.describe()["kernels"], runner.run(inputs))
    assert outs["auto"][0] == "compiled" and outs["reference"][0] == "reference"
    diff = np.abs(outs["auto"][1] - outs["reference"][1])
    print(f"torch backend fp16, compiled vs reference kernels: max {diff.max():.3g}, mean {diff.mean():.3g}")
    assert diff.mean() <= 1e-3
