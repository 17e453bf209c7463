"""RAS: the reference-aware selection block (the authors' ``RefAwareBlock``), key layout as theirs."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ..ops.ras import ref_aware_selection


class RefAwareBlock(nn.Module):
    """CondConv-style dynamic 3x3 conv (sigmoid routing over ``num_experts`` kernels) times an SE gate.
    No activation afterwards (the official ``act_layer`` is never applied)."""

    def __init__(self, out_channels: int = 64, nf: int = 64, ref_nf: int = 256, num_experts: int = 16):
        super().__init__()
        c = nf + ref_nf
        self.routing_func = nn.Sequential(nn.Linear(c, num_experts), nn.Sigmoid())
        self.weight = nn.Parameter(torch.empty(num_experts, out_channels, c, 3, 3))
        self.bias = nn.Parameter(torch.zeros(num_experts, out_channels))
        self.se = nn.Sequential(nn.Conv2d(c, c, 1), nn.ReLU(), nn.Conv2d(c, out_channels, 1), nn.Sigmoid())
        nn.init.normal_(self.weight, 0.0, 0.02)

    def forward(self, x: Tensor, ref: Tensor, valid_size: Optional[Tensor] = None) -> Tensor:
        lin, se1, se2 = self.routing_func[0], self.se[0], self.se[2]
        return ref_aware_selection(x, ref, self.weight, self.bias, lin.weight, lin.bias, se1.weight, se1.bias,
                                   se2.weight, se2.bias, valid_size)
