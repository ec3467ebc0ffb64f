"""The mask generator f_m: a small U-Net whose sigmoid output ``m [N, 1, 32, 32]`` is in [0, 1]."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))


class MaskUNet(nn.Module):
    """Two-level U-Net (32 -> 16 -> 8 -> 16 -> 32) with skip connections.

    ``width`` is the number of filters at full resolution (doubled at each level down).
    With ``width=16`` it has 116,753 parameters.
    """

    def __init__(self, width: int = 16) -> None:
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

    def forward(self, x: Tensor) -> Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        mid = self.mid(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(mid), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return torch.sigmoid(self.out(d1))
