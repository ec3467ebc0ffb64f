"""The torch view of the data: padded float32 tensors, loaded once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bgbench.backgrounds import PAD, pad
from bgbench.data.load import load_numpy


def load_tensors(dataset: str, split: str, data_root: str | Path | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Images float32 ``[N, 1, 32, 32]`` in [0, 1] (zero-padded by 2) and labels int64 ``[N]``."""
    images, labels = load_numpy(dataset, split, data_root)
    x = torch.from_numpy(pad(images)).unsqueeze(1).float().div_(255)
    return x, torch.from_numpy(labels)


def unpad(x: torch.Tensor) -> np.ndarray:
    """``load_tensors``'s images back to ``uint8 [N, 28, 28]``: float ``[N, 1, 32, 32]`` in
    [0, 1], cropped by 2 and rounded to the nearest grey level."""
    return x[:, 0, PAD:-PAD, PAD:-PAD].mul(255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
