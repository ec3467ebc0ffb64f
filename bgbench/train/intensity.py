"""A stage-3 training option: random whole-image intensity maps of the classifier's inputs.

With probability ``share`` per sample, a stage-3 classifier input ``x`` (a composite, or a
clean image of the clean share) becomes ``a*x + c`` with ``a`` uniform in
``[MIN_SCALE, 1]`` and ``c`` uniform in ``[0, 1 - a]``: an affine map of ``[0, 1]`` onto a
random sub-interval of it at least ``MIN_SCALE`` long (a reduced contrast, a raised black
level, or both, as a haze does). The images stay in ``[0, 1]``, so nothing is clipped. With
``share`` 0 (the ``faithful`` preset) nothing is drawn.

The share is chosen on the validation split with ``bgbench score RUN --on val --suite
extended``. The maps include the extended suite's haze and contrast maps by design, so its
photometric sets measure coverage of the family trained on, not generalisation beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

MIN_SCALE = 0.25


@dataclass(frozen=True)
class IntensityMaps:
    """One draw of per-sample maps ``a*x + c``: ``scale [n]`` and ``offset [n]`` (1 and 0
    for the samples left as they are)."""

    scale: Tensor
    offset: Tensor

    def rows(self, index: Tensor | slice) -> IntensityMaps:
        """The maps of the selected samples (e.g. one process's shard of a global batch)."""
        return IntensityMaps(self.scale[index], self.offset[index])

    def __call__(self, x: Tensor) -> Tensor:
        """``x [n, C, H, W]`` with each sample's map applied."""
        shape = (-1,) + (1,) * (x.dim() - 1)
        scale = self.scale.to(device=x.device, dtype=x.dtype).view(shape)
        offset = self.offset.to(device=x.device, dtype=x.dtype).view(shape)
        return x * scale + offset


def draw_intensity(n: int, generator: torch.Generator, share: float) -> IntensityMaps | None:
    """Draw the maps of ``n`` samples on the CPU; None when ``share`` is 0 (nothing drawn).

    The same amount of randomness is drawn whatever the share, so one seed gives the same
    maps to the samples every share selects.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"the intensity share must be in [0, 1], got {share}")
    if share == 0:
        return None
    chosen = torch.rand(n, generator=generator) < share
    scale = MIN_SCALE + (1 - MIN_SCALE) * torch.rand(n, generator=generator)
    offset = (1 - scale) * torch.rand(n, generator=generator)
    return IntensityMaps(torch.where(chosen, scale, torch.ones_like(scale)),
                         torch.where(chosen, offset, torch.zeros_like(offset)))
