"""Contrastive correspondence network (CCN): two independent VGG16-to-conv3_1 branches.

Key names follow the authors' ``ContrasExtractorSep`` (``feature_extraction.pth``):
``feature_extraction_image{1,2}.model.conv{1_1,..,3_1}.{weight,bias}`` and ``.mean`` / ``.std`` buffers.
The output is the pre-activation conv3_1.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .vgg import IMAGENET_MEAN, IMAGENET_STD

_LAYERS = [("conv1_1", 3, 64), ("relu1_1",), ("conv1_2", 64, 64), ("relu1_2",), ("pool1",),
           ("conv2_1", 64, 128), ("relu2_1",), ("conv2_2", 128, 128), ("relu2_2",), ("pool2",),
           ("conv3_1", 128, 256)]

# torchvision vgg16.features index of each conv, for initialising from an ImageNet VGG16 state dict.
VGG16_INDEX = {"conv1_1": 0, "conv1_2": 2, "conv2_1": 5, "conv2_2": 7, "conv3_1": 10}


class ContrasExtractorLayer(nn.Module):
    def __init__(self):
        super().__init__()
        layers = OrderedDict()
        for spec in _LAYERS:
            name = spec[0]
            if name.startswith("conv"):
                layers[name] = nn.Conv2d(spec[1], spec[2], 3, 1, 1)
            elif name.startswith("relu"):
                layers[name] = nn.ReLU()
            else:
                layers[name] = nn.MaxPool2d(2, 2)
        self.model = nn.Sequential(layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.model((img - self.mean) / self.std)


class ContrasExtractorSep(nn.Module):
    """Branch 1 embeds the LR-upsampled input, branch 2 the reference; weights are not shared."""

    def __init__(self):
        super().__init__()
        self.feature_extraction_image1 = ContrasExtractorLayer()
        self.feature_extraction_image2 = ContrasExtractorLayer()

    def forward(self, img_in_up: torch.Tensor, img_ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.feature_extraction_image1(img_in_up), self.feature_extraction_image2(img_ref)
