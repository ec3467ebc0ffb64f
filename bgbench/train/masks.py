"""Masks and backgrounds for stage 3: the transform T, disk dilation, true masks, noise."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

OTSU_BINS = 256


def disk(radius: int, device: torch.device | str = "cpu") -> Tensor:
    """The ``(2r+1) x (2r+1)`` disk of ``skimage.morphology.disk(r)`` as float 0/1."""
    r = torch.arange(-radius, radius + 1, device=device)
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= radius * radius).float()


def dilate(mask: Tensor, radius: int) -> Tensor:
    """Binary dilation of ``mask [N, 1, H, W]`` (set where > 0) by a disk; float 0/1."""
    if radius == 0:
        return (mask > 0).to(torch.float32)
    kernel = disk(radius, mask.device)[None, None]
    hits = F.conv2d((mask > 0).to(torch.float32), kernel, padding=radius)
    return (hits > 0.5).to(torch.float32)


def true_mask(x: Tensor, radius: int = 2) -> Tensor:
    """The test protocol's object region: non-zero pixels dilated by a disk (radius 2)."""
    return dilate(x, radius)


def otsu_threshold(m: Tensor) -> Tensor:
    """Per-image Otsu threshold of ``m [N, 1, H, W]`` in [0, 1]; returns ``[N, 1, 1, 1]``."""
    n = m.shape[0]
    bins = (m.reshape(n, -1).clamp(0, 1) * (OTSU_BINS - 1)).round().long()
    hist = torch.zeros(n, OTSU_BINS, device=m.device).scatter_add_(
        1, bins, torch.ones_like(bins, dtype=torch.float32))
    p = hist / hist.sum(dim=1, keepdim=True)
    levels = torch.arange(OTSU_BINS, device=m.device, dtype=torch.float32) / (OTSU_BINS - 1)
    w0 = p.cumsum(dim=1)
    mu = (p * levels).cumsum(dim=1)
    mu_total = mu[:, -1:]
    between = (mu_total * w0 - mu) ** 2 / (w0 * (1 - w0)).clamp_min(1e-12)
    return levels[between.argmax(dim=1)].reshape(n, 1, 1, 1)


def transform_mask(m: Tensor, transform: str, area_limit: float) -> Tensor:
    """Apply T to a soft mask: ``none``, threshold ``0.5``, ``otsu``, or ``quantile``.

    ``quantile`` keeps, per image, the ``area_limit`` share of pixels with the highest mask
    values (the threshold is the ``1 - area_limit`` quantile).
    """
    if transform == "none":
        return m
    if transform == "0.5":
        return (m > 0.5).to(m.dtype)
    if transform == "otsu":
        return (m > otsu_threshold(m)).to(m.dtype)
    if transform == "quantile":
        q = torch.quantile(m.reshape(m.shape[0], -1), 1.0 - area_limit, dim=1)
        return (m >= q.reshape(-1, 1, 1, 1)).to(m.dtype)
    raise ValueError(f"unknown mask transform {transform!r}")


def stage3_mask(soft: Tensor, transform: str, area_limit: float, dilation: int) -> Tensor:
    """The mask stage 3 composites with: ``T(soft)`` (``[N, 1, H, W]``), its support grown
    by a disk of ``dilation`` px (0: not grown)."""
    m = transform_mask(soft, transform, area_limit)
    if dilation:
        # Dilation grows the soft mask's support; its values inside stay as they were.
        m = torch.maximum(m, dilate(m > 0.5, dilation))
    return m


def noise_backgrounds(n: int, kind: str, rate: float, generator: torch.Generator) -> Tensor:
    """``n`` noise backgrounds ``[n, 1, 32, 32]`` (on the CPU): uniform in [0, 1] or
    Bernoulli(``rate``) pixels."""
    u = torch.rand(n, 1, 32, 32, generator=generator)
    if kind == "uniform":
        return u
    if kind == "bernoulli":
        return (u < rate).to(torch.float32)
    raise ValueError(f"unknown noise kind {kind!r}")
