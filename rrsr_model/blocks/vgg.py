"""Frozen VGG19 reference features (relu1_1, relu2_1, relu3_1), laid out as torchvision's ``features[:12]``
so a torchvision VGG19 state dict loads into it unchanged."""
from __future__ import annotations

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision vgg19.features indices of the convs we keep, and where each output is tapped.
VGG19_CONV_INDICES = (0, 2, 5, 7, 10)
VGG19_TAPS = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11}


class VGG19Features(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, 1, 1), nn.ReLU(),            # 0, 1 relu1_1
            nn.Conv2d(64, 64, 3, 1, 1), nn.ReLU(),           # 2, 3
            nn.MaxPool2d(2, 2),                              # 4
            nn.Conv2d(64, 128, 3, 1, 1), nn.ReLU(),          # 5, 6 relu2_1
            nn.Conv2d(128, 128, 3, 1, 1), nn.ReLU(),         # 7, 8
            nn.MaxPool2d(2, 2),                              # 9
            nn.Conv2d(128, 256, 3, 1, 1), nn.ReLU(),         # 10, 11 relu3_1
        )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (img - self.mean.to(img.dtype)) / self.std.to(img.dtype)
        out = {}
        taps = {v: k for k, v in VGG19_TAPS.items()}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in taps:
                out[taps[i]] = x
        return out
