"""A stage-3 training option: backgrounds that span binary patterns and grey levels.

``mix_backgrounds`` replaces each sample of f_b's binary backgrounds, independently, by f_b's
soft output (with probability ``soft_share``), by a random smooth grey field (``grey_share``),
by a member of the threat model's families (``family_share``, see
``bgbench.train.family_backgrounds``), or keeps it (the rest). A grey field is a ``g x g``
grid of uniform levels in [0, 1] upsampled bilinearly to the image size, with ``g`` drawn
from ``grids`` per sample (``g = 1`` is a constant level). With every share 0 (the
``faithful`` preset) it returns the binary backgrounds themselves and draws nothing from the
generator.

The shares are chosen on the validation split with ``bgbench score RUN --on val --suite
extended`` (never on a test set). The grey fields overlap the extended suite's grey,
ramp-like and smooth backgrounds by design, so that suite measures coverage of the family
trained on, not generalisation beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from bgbench.train.config import DEFAULT_TRAIN_FAMILIES
from bgbench.train.family_backgrounds import Candidates, draw_candidates

BINARY, SOFT, GREY, FAMILY = 0, 1, 2, 3
GREY_GRIDS: tuple[int, ...] = (1, 2, 4, 8)


@dataclass(frozen=True)
class BackgroundMix:
    """One draw of the mix for ``n`` samples: ``kind [n]`` (``BINARY``, ``SOFT``, ``GREY``
    or ``FAMILY``), the grey fields ``[n, 1, S, S]`` (used where ``kind`` is ``GREY``) and,
    with a family share, the family candidates (used where it is ``FAMILY``: the first, or
    the hardest with ``family_backgrounds.hardest``)."""

    kind: Tensor
    grey: Tensor
    family: Candidates | None = None

    def rows(self, index: Tensor | slice) -> BackgroundMix:
        """The draw of the selected samples (e.g. one process's shard of a global batch)."""
        family = None if self.family is None else self.family.rows(index)
        return BackgroundMix(self.kind[index], self.grey[index], family)


def draw_mix(n: int, size: int, generator: torch.Generator, soft_share: float = 0.0,
             grey_share: float = 0.0, grids: tuple[int, ...] = GREY_GRIDS,
             family_share: float = 0.0, family_candidates: int = 1,
             families: tuple[str, ...] = DEFAULT_TRAIN_FAMILIES, family_moves: int = 0
             ) -> BackgroundMix | None:
    """Draw the mix for ``n`` backgrounds of ``size x size`` on the CPU; None when every
    share is 0 (nothing is drawn).

    The same amount of randomness is drawn whatever the soft and grey shares, so one seed
    gives the same grey fields for every share; the family candidates are drawn after them,
    only with a family share.
    """
    _check_shares(soft_share, grey_share, family_share)
    if not grids or any(int(g) != g or not 1 <= g <= size for g in grids):
        raise ValueError(f"grey grid sizes must be integers in [1, {size}], got {grids}")
    if soft_share == 0 and grey_share == 0 and family_share == 0:
        return None
    u = torch.rand(n, generator=generator)
    kind = torch.full((n,), BINARY, dtype=torch.int64)
    kind[u < family_share] = FAMILY
    kind[u >= 1 - soft_share - grey_share] = SOFT
    kind[u >= 1 - grey_share] = GREY
    choice = torch.randint(0, len(grids), (n,), generator=generator)
    grey = torch.empty(n, 1, size, size)
    for i, g in enumerate(grids):
        levels = torch.rand(n, 1, g, g, generator=generator)
        field = F.interpolate(levels, size=(size, size), mode="bilinear", align_corners=False)
        grey[choice == i] = field[choice == i]
    if family_share == 0:
        return BackgroundMix(kind, grey)
    family = draw_candidates(kind == FAMILY, size, generator, family_candidates, families,
                             family_moves)
    return BackgroundMix(kind, grey, family)


def apply_mix(b_binary: Tensor, b_soft: Tensor, mix: BackgroundMix | None) -> Tensor:
    """``[n, 1, S, S]`` backgrounds: per sample ``b_binary``, ``b_soft`` or the grey field, as
    ``mix`` says (``b_binary`` itself when ``mix`` is None; a family sample gets its first
    candidate). Gradients reach ``b_binary`` and ``b_soft`` through the samples that use
    them."""
    if mix is None:
        return b_binary
    if b_binary.shape != b_soft.shape or b_binary.shape != mix.grey.shape:
        raise ValueError(f"binary {list(b_binary.shape)}, soft {list(b_soft.shape)} and mix "
                         f"{list(mix.grey.shape)} backgrounds must have one shape")
    kind = mix.kind.to(b_binary.device)[:, None, None, None]
    grey = mix.grey.to(device=b_binary.device, dtype=b_binary.dtype)
    other = grey
    if mix.family is not None:
        family = mix.family.backgrounds[0].to(device=b_binary.device, dtype=b_binary.dtype)
        other = torch.where(kind == FAMILY, family, grey)
    return torch.where(kind == BINARY, b_binary, torch.where(kind == SOFT, b_soft, other))


def mix_backgrounds(b_binary: Tensor, b_soft: Tensor, generator: torch.Generator,
                    soft_share: float = 0.0, grey_share: float = 0.0,
                    grids: tuple[int, ...] = GREY_GRIDS) -> Tensor:
    """``apply_mix`` of a fresh ``draw_mix`` for one process's batch ``[n, 1, S, S]``."""
    mix = draw_mix(b_binary.shape[0], b_binary.shape[-1], generator, soft_share, grey_share,
                   grids)
    return apply_mix(b_binary, b_soft, mix)


def _check_shares(soft_share: float, grey_share: float, family_share: float = 0.0) -> None:
    for name, share in (("soft_share", soft_share), ("grey_share", grey_share),
                        ("family_share", family_share)):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {share}")
    if soft_share + grey_share + family_share > 1.0:
        raise ValueError(f"soft_share + grey_share + family_share must be at most 1 (the rest "
                         f"stays binary), got {soft_share} + {grey_share} + {family_share}")
