"""One small FP16 PatchMatch call per tensor-core kernel (v2, and v3 = Algo::kTensorCoreWide), for compute-sanitizer
on the GPU machine (scripts/gpu_check.sh's sanitizer step runs it under memcheck and racecheck):

    PYTHONPATH=. compute-sanitizer --tool racecheck --error-exitcode 3 python3 scripts/sanitize_patch_match.py

The sizes cover several 128-pixel reference tiles, tail tiles and more than one block of patch rows."""
import torch

import plugins.torch as pt

ext = pt.build()
g = torch.Generator().manual_seed(0)
fi = torch.randn(1, 256, 20, 150, generator=g).cuda().half()
fr = torch.randn(1, 256, 18, 270, generator=g).cuda().half()
out = {algo: ext.patch_match_forward(fi, fr, 3, algo=algo) for algo in (2, 4)}
torch.cuda.synchronize()
same = torch.equal(out[2][0], out[4][0])
print(f"PatchMatch v2 / v3 at 20x150 vs 18x270: indices {'identical' if same else 'DIFFER'}")
raise SystemExit(0 if same else 1)
