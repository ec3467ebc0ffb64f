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
With ``family_moves`` M above 0, the hardest candidate is then refined by M local moves, as
the test-time search's second phase moves (``bgbench.attack.members.move``: one parameter
stepped, the move kept admissible): each move is scored, and kept when it raises the
cross-entropy.

The share, K and M are chosen on the validation split with ``bgbench score RUN --on val
--attack-budget B`` (never on a test set).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bgbench.attack import families as fams
from bgbench.attack import members
from bgbench.ops import composite
from bgbench.train.intensity import IntensityMaps
from bgbench.train.precision import forward


@dataclass(frozen=True)
class Candidates:
    """K family members per sample: ``backgrounds`` ``float32 [K, n, 1, S, S]`` in [0, 1]
    (zeros where no member was drawn), their ``family`` ``int64 [K, n]`` (an index into
    ``bgbench.attack.families.NAMES``; -1 where none was drawn) and ``params`` ``int64 [K, n,
    MAX_PARAMS]``, and the keys ``uint64 [M, n]`` of M local moves from the hardest."""

    backgrounds: Tensor
    family: np.ndarray
    params: np.ndarray
    move_keys: np.ndarray

    def rows(self, index: Tensor | slice) -> Candidates:
        """The candidates of the selected samples."""
        at = index.cpu().numpy() if isinstance(index, Tensor) else index
        return Candidates(self.backgrounds[:, index], self.family[:, at], self.params[:, at],
                          self.move_keys[:, at])


def draw_candidates(chosen: Tensor, size: int, generator: torch.Generator, candidates: int,
                    families: tuple[str, ...], moves: int = 0) -> Candidates:
    """``candidates`` family members for the samples where ``chosen [n]`` (bool) is set, and
    the keys of ``moves`` local moves.

    The randomness drawn from ``generator`` depends on ``n``, ``candidates`` and ``moves``
    only (the move keys last, so ``moves = 0`` draws what it drew before moves existed); the
    members come from ``bgbench.attack.members.sample`` (a hash of each drawn key).
    """
    if candidates < 1:
        raise ValueError(f"family candidates must be at least 1, got {candidates}")
    if moves < 0:
        raise ValueError(f"family moves must be at least 0, got {moves}")
    n = chosen.shape[0]
    which = torch.randint(0, len(families), (candidates, n), generator=generator)
    keys = torch.randint(0, 2**62, (candidates, n), generator=generator, dtype=torch.int64)
    out = torch.zeros(candidates, n, 1, size, size)
    family = np.full((candidates, n), -1, np.int64)
    params = np.zeros((candidates, n, fams.MAX_PARAMS), np.int64)
    rows = chosen.nonzero().squeeze(1)
    if rows.numel():
        index = np.array([fams.NAMES.index(f) for f in families])[which[:, rows].numpy()]
        drawn = members.sample(index.reshape(-1), keys[:, rows].numpy().reshape(-1)
                               .astype(np.uint64), size)
        out[:, rows] = torch.from_numpy(drawn.bytes).float().div_(255).view(
            candidates, rows.numel(), 1, size, size)
        at = rows.numpy()
        family[:, at] = drawn.family.reshape(candidates, -1)
        params[:, at] = drawn.params.reshape(candidates, rows.numel(), -1)
    move_keys = np.zeros((0, n), np.uint64)
    if moves:
        move_keys = torch.randint(0, 2**62, (moves, n), generator=generator,
                                  dtype=torch.int64).numpy().astype(np.uint64)
    return Candidates(out, family, params, move_keys)


def _losses(f: nn.Module, x: Tensor, y: Tensor, m: Tensor, b: Tensor,
            intensity: IntensityMaps | None, precision: str) -> Tensor:
    composed = composite(x, m, b)[0]
    if intensity is not None:
        composed = intensity(composed)
    return F.cross_entropy(forward(f, composed, precision=precision), y, reduction="none")


@torch.no_grad()
def hardest(f: nn.Module, x: Tensor, y: Tensor, m: Tensor, candidates: Candidates,
            intensity: IntensityMaps | None = None, precision: str = "fp32") -> Tensor:
    """``[n, 1, S, S]``: per image the candidate background whose composite ``m*x + (1-m)*b``
    (then ``intensity``) gives ``f`` the highest cross-entropy against ``y``, refined by the
    candidates' local moves (each kept where it raises the cross-entropy)."""
    backgrounds, n_moves = candidates.backgrounds, len(candidates.move_keys)
    if backgrounds.shape[0] == 1 and not n_moves:
        return backgrounds[0]
    b = backgrounds.to(device=x.device, dtype=x.dtype)
    losses = torch.stack([_losses(f, x, y, m, c, intensity, precision) for c in b])
    best = losses.argmax(0)
    rows = torch.arange(x.shape[0], device=best.device)
    out, loss = b[best, rows], losses[best, rows]
    if not n_moves:
        return out
    pick = best.cpu().numpy()
    at = np.arange(x.shape[0])
    current = members.Members(candidates.family[pick, at], candidates.params[pick, at],
                              (out[:, 0] * 255).round().to(torch.uint8).cpu().numpy())
    for keys in candidates.move_keys:
        child = members.move(current, keys, x.shape[-1])
        trial = torch.from_numpy(child.bytes).to(device=x.device, dtype=x.dtype)[:, None] / 255
        trial_loss = _losses(f, x, y, m, trial, intensity, precision)
        better = trial_loss > loss
        keep = better.cpu().numpy()
        current = members.Members(np.where(keep, child.family, current.family),
                                  np.where(keep[:, None], child.params, current.params),
                                  np.where(keep[:, None, None], child.bytes, current.bytes))
        out = torch.where(better[:, None, None, None], trial, out)
        loss = torch.where(better, trial_loss, loss)
    return out
