"""Small shared layers."""
from __future__ import annotations

from torch import nn


def lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.1)


class ResidualBlockNoBN(nn.Module):
    """out = x + conv2(relu(conv1(x))): 3x3 convs with bias, plain ReLU, residual scale 1."""

    def __init__(self, nf: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.relu = nn.ReLU()

    def forward(self, x):
        return x + self.conv2(self.relu(self.conv1(x)))


def make_body(n_blocks: int, nf: int = 64) -> nn.Sequential:
    return nn.Sequential(*[ResidualBlockNoBN(nf) for _ in range(n_blocks)])
