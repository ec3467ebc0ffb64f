"""The mask generator f_m: a small U-Net whose sigmoid output ``m [N, 1, 32, 32]`` is in [0, 1]."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))


class MaskUNet(nn.Module):
    """Two-level U-Net (32 -> 16 -> 8 -> 16 -> 32) with skip connections.

    ``width`` is the number of filters at full resolution (doubled at each level down);
    the initial output is about ``init_area`` everywhere.
    With ``width=16`` it has 116,753 parameters.
    """

    def __init__(self, width: int = 16, init_area: float = 0.1) -> None:
        super().__init__()
        c = width
        self.enc1 = _block(1, c)
        self.enc2 = _block(c, 2 * c)
        self.mid = _block(2 * c, 4 * c)
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.ConvTranspose2d(4 * c, 2 * c, 2, stride=2)
        self.dec2 = _block(4 * c, 2 * c)
        self.up1 = nn.ConvTranspose2d(2 * c, c, 2, stride=2)
        self.dec1 = _block(2 * c, c)
        self.out = nn.Conv2d(c, 1, 1)
        # Start from a small, nearly uniform mask: the classifier's loss then raises it on
        # the object, instead of the area penalty having to carve it out of a half-on mask.
        nn.init.normal_(self.out.weight, std=0.01)
        nn.init.constant_(self.out.bias, math.log(init_area / (1 - init_area)))

    def forward(self, x: Tensor) -> Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        mid = self.mid(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(mid), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return torch.sigmoid(self.out(d1))
