"""Training losses of spec §5.3: L1, the VGG19-relu5_1 perceptual loss and WGAN-GP."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks.vgg import IMAGENET_MEAN, IMAGENET_STD
from ..checkpoint import CheckpointError, plain_state, read_state_file, strict_load

# torchvision vgg19.features up to relu5_1 (features[:30]): channel counts, "M" = 2x2 max pool.
_VGG19_TO_RELU5_1 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    return F.l1_loss(pred, target, reduction="mean")


class VGG19Relu5(nn.Module):
    """Frozen VGG19 ``features[:30]`` (output relu5_1) with ImageNet input normalisation, torchvision layout."""

    def __init__(self):
        super().__init__()
        layers, c_in = [], 3
        for v in _VGG19_TO_RELU5_1:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, v, 3, 1, 1), nn.ReLU()]
                c_in = v
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, img: Tensor) -> Tensor:
        return self.features((img - self.mean) / self.std)

    @classmethod
    def from_torchvision(cls, path) -> "VGG19Relu5":
        """Load the convs from a torchvision VGG19 state dict file (e.g. ``vgg19-dcbb9e9d.pth``)."""
        state = plain_state(read_state_file(path, "VGG19"))
        if "features.34.weight" not in state:
            raise CheckpointError(f"VGG19 checkpoint {path} is not a torchvision VGG19 state dict: it lacks "
                                  f"features.34 (VGG19's last conv; a VGG16 ends at features.28)")
        vgg = cls()
        own = vgg.state_dict()
        strict_load(vgg, {k: state[k] for k in own if k in state}, "VGG19 (perceptual loss)", path)
        return vgg


def load_perceptual_vgg(path: Optional[Path]) -> VGG19Relu5:
    """The perceptual loss needs ImageNet VGG19 weights, which cannot be downloaded here: refuse without them
    rather than train against a random network."""
    if path is None:
        raise ValueError("the perceptual loss (GAN training) needs ImageNet VGG19 weights: pass a torchvision "
                         "VGG19 state dict (vgg19-dcbb9e9d.pth) with --vgg-ckpt")
    return VGG19Relu5.from_torchvision(path)


class PerceptualLoss(nn.Module):
    """weight * ||phi(SR) - phi(HR)||_F with the Frobenius norm over the whole batch tensor (not averaged),
    as the authors' ``criterion: fro``."""

    def __init__(self, vgg: VGG19Relu5, weight: float = 1e-4):
        super().__init__()
        self.vgg = vgg
        self.weight = weight

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        with torch.no_grad():
            target = self.vgg(hr)
        return self.weight * torch.linalg.vector_norm(self.vgg(sr) - target)


def gradient_penalty(net_d: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """mean over samples of (||grad_x D(x)||_2 - 1)^2 at x = a*real + (1-a)*fake, a ~ U(0, 1) per sample."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x = (alpha * real + (1.0 - alpha) * fake).detach().requires_grad_(True)
    out = net_d(x)
    (grad,) = torch.autograd.grad(out, x, grad_outputs=torch.ones_like(out), create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


def discriminator_loss(net_d: nn.Module, real: Tensor, fake: Tensor, gp_weight: float = 10.0) -> dict[str, Tensor]:
    """WGAN-GP critic loss mean(D(fake)) - mean(D(real)) + gp_weight * GP; inputs are detached here so the
    critic step never reaches the generator. Returns the total under "l_d" and its parts."""
    real, fake = real.detach(), fake.detach()
    d_real = net_d(real).mean()
    d_fake = net_d(fake).mean()
    gp = gradient_penalty(net_d, real, fake)
    return {"l_d": d_fake - d_real + gp_weight * gp, "d_real": d_real, "d_fake": d_fake, "gp": gp}


def generator_adversarial_loss(net_d: nn.Module, fake: Tensor, weight: float = 1e-6) -> Tensor:
    return weight * -net_d(fake).mean()
