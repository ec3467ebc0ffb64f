"""The one accuracy loop: a classifier's correct predictions, batch by batch, without
gradients (the trainer's validation and ``bgbench score`` both count with it)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

EVAL_BATCH = 1000


@torch.no_grad()
def count_correct(model: nn.Module, x: Tensor, y: Tensor,
                  transform: Callable[[int, int, Tensor], Tensor] | None = None,
                  batch: int = EVAL_BATCH) -> int:
    """How many of ``x`` ``model`` (put in eval mode) classifies as ``y``; ``transform(lo,
    hi, xb)`` replaces each batch ``x[lo:hi]`` first."""
    model.eval()
    correct = 0
    for lo in range(0, x.shape[0], batch):
        hi = min(lo + batch, x.shape[0])
        xb = x[lo:hi] if transform is None else transform(lo, hi, x[lo:hi])
        correct += int((model(xb).argmax(1) == y[lo:hi]).sum().item())
    return correct
