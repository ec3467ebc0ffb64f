"""Training data as tensors: the fixed train/validation split, batch order, augmentation,
and a small synthetic dataset for tests and benchmarks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from bgbench.errors import ParameterError


@dataclass
class Split:
    """Training and validation images ``[N, 1, 32, 32]`` in [0, 1] and labels ``[N]``."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor

    def to(self, device: torch.device) -> Split:
        return Split(*(t.to(device) for t in (self.x_train, self.y_train, self.x_val, self.y_val)))


def split_indices(n: int, val_size: int, seed: int) -> tuple[Tensor, Tensor]:
    """Validation and training indices of the fixed split of ``n`` training images."""
    if val_size >= n:
        raise ParameterError(f"`val_size` {val_size} leaves no training images out of {n}; "
                             "lower it")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[:val_size], perm[val_size:]


def split(x: Tensor, y: Tensor, val_size: int, train_subset: int, seed: int) -> Split:
    """Hold ``val_size`` images out of the training set by a permutation seeded with ``seed``;
    keep the first ``train_subset`` of the rest (0: all). The same for every training seed."""
    val, train = split_indices(x.shape[0], val_size, seed)
    if train_subset:
        train = train[:train_subset]
    return Split(x[train], y[train], x[val], y[val])


def batch_order(n: int, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    """A shuffled epoch of full global batches of indices (the last partial batch dropped)."""
    if n < batch_size:
        raise ParameterError(f"`batch_size` {batch_size} exceeds the {n} training images; "
                             "lower it")
    perm = torch.randperm(n, generator=generator)
    return list(perm[: (n // batch_size) * batch_size].split(batch_size))


def shift_offsets(n: int, generator: torch.Generator, max_shift: int = 2) -> Tensor:
    """Random whole-pixel offsets ``[n, 2]`` in ``[0, 2 * max_shift]`` for ``shift``."""
    return torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator)


def shift(x: Tensor, offsets: Tensor, max_shift: int = 2) -> Tensor:
    """Translate image ``i`` by ``offsets[i] - max_shift`` pixels (rows, columns), filling
    with zeros."""
    n, _, h, w = x.shape
    dy, dx = offsets.to(x.device).T
    padded = F.pad(x, (max_shift,) * 4)
    rows = (torch.arange(h, device=x.device)[None] + dy[:, None])[:, :, None]
    cols = (torch.arange(w, device=x.device)[None] + dx[:, None])[:, None, :]
    return padded[torch.arange(n, device=x.device)[:, None, None], 0, rows, cols][:, None]


def synthetic(n: int, seed: int = 0, classes: int = 10) -> tuple[Tensor, Tensor]:
    """``n`` digit-like images: a bright stroke through the centre whose angle depends on the
    class, with jitter, on a black 32x32 canvas (zero outside a 28x28 centre, like padded
    MNIST). Float32 ``[n, 1, 32, 32]`` in [0, 1] and int64 labels."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    angle = y.float() * math.pi / classes + (torch.rand(n, generator=g) - 0.5) * 0.15
    length = 8 + 4 * torch.rand(n, generator=g)
    offset = (torch.rand(n, 2, generator=g) - 0.5) * 4
    coords = torch.arange(32, dtype=torch.float32) - 15.5
    yy, xx = coords[:, None], coords[None, :]
    py = yy[None] - offset[:, 0, None, None]
    px = xx[None] - offset[:, 1, None, None]
    c, s = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    along, across = px * c + py * s, -px * s + py * c
    # A second, shorter bar for odd classes makes the shapes differ beyond orientation.
    bar = ((across.abs() < 1.2) & (along.abs() < length[:, None, None])).float()
    cross = ((along.abs() < 1.2) & (across.abs() < 4) & (y % 2 == 1)[:, None, None]).float()
    img = torch.clamp(bar + cross, 0, 1) * (0.7 + 0.3 * torch.rand(n, 1, 1, generator=g))
    img[:, :2], img[:, -2:], img[:, :, :2], img[:, :, -2:] = 0, 0, 0, 0
    return img[:, None].contiguous(), y
