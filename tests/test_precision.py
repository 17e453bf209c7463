"""The FP16 policy in PyTorch: which parameters are half, and that the FP16 model tracks the FP32 one."""
import copy

import numpy as np
import torch

import rrsr_model
from rrsr_model.precision import to_fp16


def test_policy_dtypes_and_parity():
    torch.manual_seed(0)
    model = rrsr_model.build_model("rrsr").eval()
    for p in model.net_g.parameters():
        p.data.add_(torch.randn_like(p) * 0.01)
    half = to_fp16(copy.deepcopy(model))
    head = half.net_g.dyn_agg_restore.head_small
    assert head.weight.dtype == torch.float16 and head.routing_func[0].weight.dtype == torch.float32
    assert head.se[0].weight.dtype == torch.float32
    assert half.net_g.dyn_agg_restore.small_dyn_agg.weight.dtype == torch.float16
    assert half.net_extractor.feature_extraction_image1.model.conv1_1.weight.dtype == torch.float16
    assert half.net_map.vgg.features[0].weight.dtype == torch.float16
    lr = torch.rand(1, 3, 8, 10)
    up = torch.nn.functional.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    ref = torch.rand(1, 3, 32, 40)
    with torch.no_grad():
        a, b = model(lr, up, ref), half(lr, up, ref)
    assert b.dtype == torch.float32
    mse = float(((a - b) ** 2).mean())
    psnr = 10 * np.log10(1 / mse)
    assert 45 < psnr < 200, psnr       # FP16 arithmetic really happened, and stayed close
