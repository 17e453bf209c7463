"""Content extractor (CE): conv 3->64 + LeakyReLU(0.1), then residual blocks. Input is the raw LR in [0, 1]."""
from __future__ import annotations

from torch import nn

from .common import lrelu, make_body


class ContentExtractor(nn.Module):
    def __init__(self, nf: int = 64, n_blocks: int = 16):
        super().__init__()
        self.conv_first = nn.Conv2d(3, nf, 3, 1, 1)
        self.body = make_body(n_blocks, nf)
        self.lrelu = lrelu()

    def forward(self, x):
        return self.body(self.lrelu(self.conv_first(x)))
