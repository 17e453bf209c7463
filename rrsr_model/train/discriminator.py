"""The authors' ``ImageDiscriminator(ndf=32)`` for the GAN model (spec §5.3); key names match theirs."""
from __future__ import annotations

from torch import Tensor, nn


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, 1, 1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True),
        nn.Conv2d(c_out, c_out, 3, 2, 1), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True))


class ImageDiscriminator(nn.Module):
    """Five stride-2 blocks (ndf..16*ndf channels), global average pool, 1x1 convs to one score per image.

    The final Sigmoid is kept although the loss is WGAN-GP: the official GAN model was trained that way."""

    def __init__(self, in_nc: int = 3, ndf: int = 32):
        super().__init__()
        chans = [in_nc] + [ndf * 2 ** i for i in range(5)]
        for i in range(5):
            setattr(self, f"conv_block{i + 1}", _conv_block(chans[i], chans[i + 1]))
        self.out_block = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(chans[-1], 1024, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(1024, 1, 1), nn.Sigmoid())
        self._init_weights()

    def _init_weights(self, gain: float = 0.02) -> None:
        # the authors' srntt_init_weights: convs N(0, gain), BN scale N(1, gain), all biases 0
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, gain)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, gain)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 1, 1, 1) scores in (0, 1)."""
        for i in range(1, 6):
            x = getattr(self, f"conv_block{i}")(x)
        return self.out_block(x)
