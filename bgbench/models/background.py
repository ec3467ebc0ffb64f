"""The background generator f_b: 2x2 independent 16x16 tiles, each from 16 Gaussian values."""

from __future__ import annotations

import torch
from torch import Tensor, nn

TILES = 2
TILE = 16
SEED_SIZE = 4


class TiledBackgroundGenerator(nn.Module):
    """``z [N, 4, 16]`` (one 4x4 seed per tile) -> background ``[N, 1, 32, 32]`` in [0, 1].

    Each seed is upsampled by two (nearest x2, conv3x3, ReLU) stages to a 16x16 tile with a
    sigmoid; the four tiles are laid out as a 2x2 grid. With ``width=64`` it has 23,873
    parameters.
    """

    noise_shape = (TILES * TILES, SEED_SIZE * SEED_SIZE)

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(width, width // 2, 3, padding=1), nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(width // 2, width // 4, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(width // 4, 1, 3, padding=1),
        )

    def sample_noise(self, n: int, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> Tensor:
        """Draw ``z ~ N(0, 1)`` of shape ``[n, 4, 16]`` for ``n`` backgrounds.

        Drawn on the CPU (where ``generator`` lives) so a seed gives the same noise on any device.
        """
        return torch.randn(n, *self.noise_shape, generator=generator).to(device)

    def forward(self, z: Tensor) -> Tensor:
        n = z.shape[0]
        tiles = torch.sigmoid(self.net(z.reshape(n * TILES * TILES, 1, SEED_SIZE, SEED_SIZE)))
        # [n*4, 1, 16, 16] -> [n, row, col, 16, 16] -> [n, 1, row*16 + y, col*16 + x]
        grid = tiles.reshape(n, TILES, TILES, TILE, TILE).permute(0, 1, 3, 2, 4)
        return grid.reshape(n, 1, TILES * TILE, TILES * TILE)
