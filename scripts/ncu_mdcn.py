"""One FP16 MDCN call per kernel variant at 64@512^2 (the issue's cuDNN comparison point; random offsets, std 2 px),
for Nsight Compute on the GPU machine:

    PYTHONPATH=. ncu --kernel-name regex:gemm --section SpeedOfLight --section WarpStateStats \\
        python3 scripts/ncu_mdcn.py [variant ...]

variant: mdcn::Variant (0 = the launcher's choice, the default; 1..4 as plugins/kernels/mdcn/launch.h).
"""
import sys

import torch

import plugins.torch as pt

ext = pt.build()
g = torch.Generator(device="cuda").manual_seed(0)
c, s = 64, 512
x = torch.randn(1, c, s, s, device="cuda", generator=g).half()
w = (torch.randn(c, c, 3, 3, device="cuda", generator=g) / (9 * c) ** 0.5).half()
b = torch.randn(c, device="cuda", generator=g).half()
off = torch.randn(1, 2 * 8 * 9, s, s, device="cuda", generator=g) * 2.0
m = torch.rand(1, 8 * 9, s, s, device="cuda", generator=g)
for v in [int(a) for a in sys.argv[1:]] or [0]:
    ext.mdcn_forward(x, w, off, b, m, [1, 1], [1, 1, 1, 1], [1, 1], 1, 8, variant=v)
torch.cuda.synchronize()
