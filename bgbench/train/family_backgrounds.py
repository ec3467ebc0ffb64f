"""A stage-3 training option: backgrounds drawn from the threat model's families, mined per image.

With ``family_share`` above 0, that share of the classifier's stage-3 backgrounds (taken from
the binary ones: ``bg_mix.FAMILY``) are members of the families ``train_families`` names
(``bgbench.attack.families``): per background a family chosen uniformly and a member drawn
uniformly among its admissible ones (mean at most 0.5, as every background of the threat
model). With ``family_candidates`` K above 1, K members are drawn per such background and the
classifier is shown the one it finds hardest (the highest cross-entropy on its composite,
scored without gradients before the step): one round of the test-time search, run on the
training images.

The default families (``config.DEFAULT_TRAIN_FAMILIES``) leave ``frame``, ``clock`` and
``ramp`` out, so the worst-case search always has families (and the paper's ``border`` and
``clock``) that training never drew.
The share and K are chosen on the validation split with ``bgbench score RUN --on val
--attack-budget B`` (never on a test set).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bgbench.attack import families as fams
from bgbench.attack import members
from bgbench.ops import composite
from bgbench.train.intensity import IntensityMaps
from bgbench.train.precision import forward


def draw_candidates(chosen: Tensor, size: int, generator: torch.Generator, candidates: int,
                    families: tuple[str, ...]) -> Tensor:
    """``float32 [candidates, n, 1, size, size]`` backgrounds in [0, 1]: family members for the
    samples where ``chosen [n]`` (bool) is set, zeros elsewhere.

    The randomness drawn from ``generator`` depends on ``n`` and ``candidates`` only; the
    members come from ``bgbench.attack.members.sample`` (a hash of each drawn key).
    """
    if candidates < 1:
        raise ValueError(f"family candidates must be at least 1, got {candidates}")
    n = chosen.shape[0]
    which = torch.randint(0, len(families), (candidates, n), generator=generator)
    keys = torch.randint(0, 2**62, (candidates, n), generator=generator, dtype=torch.int64)
    out = torch.zeros(candidates, n, 1, size, size)
    rows = chosen.nonzero().squeeze(1)
    if rows.numel():
        index = np.array([fams.NAMES.index(f) for f in families])[which[:, rows].numpy()]
        drawn = members.sample(index.reshape(-1), keys[:, rows].numpy().reshape(-1)
                               .astype(np.uint64), size)
        out[:, rows] = torch.from_numpy(drawn.bytes).float().div_(255).view(
            candidates, rows.numel(), 1, size, size)
    return out


@torch.no_grad()
def hardest(f: nn.Module, x: Tensor, y: Tensor, m: Tensor, candidates: Tensor,
            intensity: IntensityMaps | None = None, precision: str = "fp32") -> Tensor:
    """``[n, 1, S, S]``: per image the candidate background ``candidates [K, n, 1, S, S]``
    whose composite ``m*x + (1-m)*b`` (then ``intensity``) gives ``f`` the highest
    cross-entropy against ``y``."""
    if candidates.shape[0] == 1:
        return candidates[0]
    losses = []
    for b in candidates:
        composed = composite(x, m, b)[0]
        if intensity is not None:
            composed = intensity(composed)
        losses.append(F.cross_entropy(forward(f, composed, precision=precision), y,
                                      reduction="none"))
    best = torch.stack(losses).argmax(0)
    return candidates[best, torch.arange(x.shape[0], device=best.device)]
