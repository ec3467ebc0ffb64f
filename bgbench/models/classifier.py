"""The paper's classifier f: three VGG blocks (3x3 conv, ReLU, 2x2 max-pool), dense 128, dense 10."""

from __future__ import annotations

from torch import Tensor, nn

INPUT_SIZE = 32
NUM_CLASSES = 10


class VGGFeatures(nn.Sequential):
    """Three blocks of ``conv3x3 (same) -> ReLU -> maxpool 2x2`` with ``widths`` filters.

    ``[N, 1, 32, 32] -> [N, widths[-1], 4, 4]``.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128), in_channels: int = 1) -> None:
        layers: list[nn.Module] = []
        for width in widths:
            layers += [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            in_channels = width
        super().__init__(*layers)
        self.out_channels = in_channels
        self.out_size = INPUT_SIZE // 2 ** len(widths)


class VGGClassifier(nn.Module):
    """Float32 ``[N, 1, 32, 32]`` pixels in [0, 1] -> logits ``[N, 10]``.

    With the default widths (32, 64, 128) and ``hidden=128`` it has 356,234 parameters.
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128), hidden: int = 128,
                 num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.features = VGGFeatures(widths)
        flat = self.features.out_channels * self.features.out_size ** 2
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(inplace=True))
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.embed(self.features(x)))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["INPUT_SIZE", "NUM_CLASSES", "VGGClassifier", "VGGFeatures", "count_parameters"]
