"""One FP16 PatchMatch call (tensor-core path) on CCN-like 256-channel features, for Nsight Compute on the GPU machine:

    PYTHONPATH=. ncu --kernel-name regex:match --section SpeedOfLight --section MemoryWorkloadAnalysis \\
        --section WarpStateStats --section Occupancy python3 scripts/ncu_patch_match.py [HxW] [algo]

HxW: the feature size, which is the LR size (default 270x480: 1080p output; 135x240 profiles in a quarter of the
time). algo: plugins.torch's patch_match_forward algo (0 = the launcher's choice, the default; 2 tensor cores).
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_kernels as bk  # noqa: E402  (the benchmark's inputs)
import plugins.torch as pt  # noqa: E402

h, w = (int(v) for v in (sys.argv[1] if len(sys.argv) > 1 else "270x480").lower().split("x"))
algo = int(sys.argv[2]) if len(sys.argv) > 2 else 0
ext = pt.build()
fi, fr = bk._ccn_like(h, w)
index, score = ext.patch_match_forward(fi.half(), fr.half(), 3, algo=algo)
torch.cuda.synchronize()
print(f"PatchMatch FP16 {h}x{w}, algo {algo}: {int(index.numel())} input patches matched")
