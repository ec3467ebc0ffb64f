"""A stage-3 training option: random pixel dropout of the classifier's objects.

With probability ``share`` per sample, each pixel of a stage-3 image is set to 0 with a rate
drawn for that sample uniformly in ``[0, MAX_RATE]``, before it is composited, so only the
object keeps the holes (its background comes from the background generator). Binary
backgrounds teach the classifier that speckled pixels are background; without this option
it reads an object with holes the same way (shot noise, which zeroes faint pixels, is the
extended suite's set of that kind). With ``share`` 0 nothing is drawn, so runs without it
draw exactly what they drew before it existed.

The share is chosen on the validation split (``docs/threat-model.md``). Shot noise is then
not held out for a model trained with it.
"""

from __future__ import annotations

import torch
from torch import Tensor

MAX_RATE = 0.3


def draw_pixel_dropout(n: int, size: int, generator: torch.Generator, share: float
                       ) -> Tensor | None:
    """Keep masks ``float32 [n, 1, size, size]`` (0 where a pixel is dropped) drawn on the
    CPU; None when ``share`` is 0 (nothing drawn)."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"the pixel-dropout share must be in [0, 1], got {share}")
    if share == 0:
        return None
    chosen = torch.rand(n, generator=generator) < share
    rate = torch.where(chosen, MAX_RATE * torch.rand(n, generator=generator),
                       torch.zeros(n))
    u = torch.rand(n, 1, size, size, generator=generator)
    return (u >= rate.view(-1, 1, 1, 1)).to(torch.float32)
