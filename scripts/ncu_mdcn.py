"""One FP16 MDCN call per kernel variant at 64@512^2 (the issue's cuDNN comparison point; bench_kernels.py's random
offsets), for Nsight Compute on the GPU machine:

    PYTHONPATH=. ncu --kernel-name regex:gemm --section SpeedOfLight --section WarpStateStats \\
        python3 scripts/ncu_mdcn.py [variant ...]

variant: mdcn::Variant (0 = the launcher's choice, the default; 1..4 as plugins/kernels/mdcn/launch.h).
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_kernels as bk  # noqa: E402  (the benchmark's inputs)
import plugins.torch as pt  # noqa: E402

ext = pt.build()
g = torch.Generator(device="cuda").manual_seed(0)
c, s = 64, 512
x = torch.randn(1, c, s, s, device="cuda", generator=g).half()
w = (torch.randn(c, c, 3, 3, device="cuda", generator=g) / (9 * c) ** 0.5).half()
b = torch.randn(c, device="cuda", generator=g).half()
off = bk._offsets(s, g, "random")
m = torch.rand(1, bk.OFFSET_GROUP * 9, s, s, device="cuda", generator=g)
for v in [int(a) for a in sys.argv[1:]] or [0]:
    ext.mdcn_forward(x, w, off, b, m, [1, 1], [1, 1, 1, 1], [1, 1], 1, bk.OFFSET_GROUP, variant=v)
torch.cuda.synchronize()
