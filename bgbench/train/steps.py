"""One optimisation step of each stage, as plain functions (the trainer's epochs, the
training benchmark and the asv benchmarks all call these).

``precision`` is the run's (``bgbench.train.precision``): each network's forward runs in
it and returns float32, so losses, their reductions and the fused composite are float32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bgbench.ops import area_penalty, composite
from bgbench.train.bg_mix import FAMILY, BackgroundMix, apply_mix
from bgbench.train.config import TrainOptions
from bgbench.train.family_backgrounds import hardest
from bgbench.train.intensity import IntensityMaps
from bgbench.train.precision import forward


def total_variation(m: Tensor) -> Tensor:
    """Mean absolute difference of neighbouring mask pixels (both directions)."""
    return ((m[:, :, 1:] - m[:, :, :-1]).abs().mean()
            + (m[:, :, :, 1:] - m[:, :, :, :-1]).abs().mean())


def classifier_step(f: nn.Module, opt: torch.optim.Optimizer, x: Tensor, y: Tensor,
                    precision: str = "fp32") -> tuple[Tensor, Tensor]:
    """Stage 1: one cross-entropy step of ``f``; returns the loss and the logits."""
    logits = forward(f, x, precision=precision)
    loss = F.cross_entropy(logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach(), logits.detach()


def agcnn_local_step(branches: nn.Module, opt: torch.optim.Optimizer, x: Tensor, y: Tensor,
                     precision: str = "fp32") -> tuple[Tensor, Tensor]:
    """AG-CNN's local stage: one step of the local branch and fusion head on the sum of the
    fused and local cross-entropies (``branches`` returns global, local and fused logits);
    returns the loss and the fused logits."""
    _, local_logits, logits = forward(branches, x, precision=precision)
    loss = F.cross_entropy(logits, y) + F.cross_entropy(local_logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach(), logits.detach()


def mask_loss(f: nn.Module, x: Tensor, y: Tensor, m: Tensor, area_limit: float,
              area_weight: float, tv_weight: float, precision: str = "fp32"
              ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Stage-2 loss ``CE(f(x*m)) + w_A L_A(m) + w_TV TV(m)``: the total, the cross-entropy,
    the logits and the per-image mask areas."""
    masked, area, _ = composite(x, m)
    logits = forward(f, masked, precision=precision)
    ce = F.cross_entropy(logits, y)
    loss = ce + area_weight * area_penalty(area, area_limit)
    if tv_weight:
        loss = loss + tv_weight * total_variation(m)
    return loss, ce, logits, area


def mask_step(fm: nn.Module, f: nn.Module, opt: torch.optim.Optimizer, x: Tensor, y: Tensor,
              area_limit: float, area_weight: float, tv_weight: float, precision: str = "fp32"
              ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Stage 2: one step of the mask generator ``fm`` against the frozen classifier ``f``."""
    loss, ce, logits, area = mask_loss(f, x, y, forward(fm, x, precision=precision),
                                       area_limit, area_weight, tv_weight, precision)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach(), ce.detach(), logits.detach(), area.detach()


BLOCK_SIZES = (1, 2, 4)


def uniforms(n: int, size: int, mode: str, generator: torch.Generator) -> Tensor | None:
    """Uniforms ``[n, 1, size, size]`` for ``sample_background`` (None for mode ``none``).

    ``bernoulli``: one per pixel. ``blocks``: constant over square cells of 1, 2 or 4 px (a
    random cell size per background), so the sampled backgrounds also have coarse structure.
    """
    if mode == "none":
        return None
    if mode == "bernoulli":
        return torch.rand(n, 1, size, size, generator=generator)
    if mode != "blocks":
        raise ValueError(f"unknown background sampling {mode!r}")
    choice = torch.randint(0, len(BLOCK_SIZES), (n,), generator=generator)
    out = torch.empty(n, 1, size, size)
    for i, cell in enumerate(BLOCK_SIZES):
        u = torch.rand(n, 1, size // cell, size // cell, generator=generator)
        u = u.repeat_interleave(cell, dim=2).repeat_interleave(cell, dim=3)
        out[choice == i] = u[choice == i]
    return out


def sample_background(b: Tensor, uniforms: Tensor | None) -> Tensor:
    """``b`` itself, or with ``uniforms`` a binary background set where ``uniforms < b``; the
    gradient passes straight through to ``b``."""
    if uniforms is None:
        return b
    hard = (uniforms < b).to(b.dtype)
    return hard + b - b.detach()


def adversarial_classifier_step(f: nn.Module, opt: torch.optim.Optimizer, x: Tensor, y: Tensor,
                                m: Tensor, b: Tensor, intensity: IntensityMaps | None = None,
                                precision: str = "fp32") -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Stage 3, classifier half: cross-entropy on ``m*x + (1-m)*b`` (each image then mapped
    by ``intensity`` when given); returns the loss, the logits, and the per-image mask and
    background means."""
    composed, area, bg_mean = composite(x, m, b.detach())
    if intensity is not None:
        composed = intensity(composed)
    return (*classifier_step(f, opt, composed, y, precision), area.detach(), bg_mean.detach())


def generator_step(f: nn.Module, fb: nn.Module, opt: torch.optim.Optimizer, x: Tensor,
                   y: Tensor, m: Tensor, z: Tensor, uniforms: Tensor | None, bg_limit: float,
                   bg_weight: float, reduce: Callable[[list[nn.Parameter]], None] | None = None,
                   precision: str = "fp32") -> Tensor:
    """Stage 3, generator half: one step of ``fb`` maximising ``CE - w_BA L_BA``.

    The gradient is taken with ``autograd.grad`` with respect to ``fb`` only, then passed to
    ``reduce`` (the cross-process average): the loss runs through the classifier, whose DDP
    wrapper must not see a second backward pass in the same iteration. Returns the CE.
    """
    # With sampling, bg_mean is the sample's mean; its gradient is that of the mean
    # probability (straight-through), so L_BA still steers the expected background.
    b = sample_background(forward(fb, z, precision=precision), uniforms)
    composed, _, bg_mean = composite(x, m, b)
    ce = F.cross_entropy(forward(f, composed, precision=precision), y)
    loss = -ce + bg_weight * area_penalty(bg_mean, bg_limit)
    params = list(fb.parameters())
    for p, grad in zip(params, torch.autograd.grad(loss, params), strict=True):
        p.grad = grad
    if reduce is not None:
        reduce(params)
    opt.step()
    return ce.detach()


@dataclass(frozen=True)
class AdversarialBatch:
    """One stage-3 batch as this process sees it, with every draw its step uses.

    ``m``: the masks (1 on the batch's clean share). ``z``: the background generator's
    noise, or with noise backgrounds the backgrounds themselves. ``uniforms``: for sampling
    the classifier's binary backgrounds; ``mix``: which of them are soft or grey;
    ``intensity``: the classifier inputs' intensity maps; ``generator_uniforms``: one entry
    per generator step (none with noise backgrounds).
    """

    x: Tensor
    y: Tensor
    m: Tensor
    z: Tensor
    uniforms: Tensor | None
    mix: BackgroundMix | None
    intensity: IntensityMaps | None
    generator_uniforms: tuple[Tensor | None, ...]


class AdversarialOutcome(NamedTuple):
    """A stage-3 step's classifier loss, logits, per-image mask and background means, and
    the last generator step's cross-entropy (0 without generator steps)."""

    loss: Tensor
    logits: Tensor
    area: Tensor
    bg_mean: Tensor
    generator_ce: Tensor | float


def classifier_backgrounds(fb: nn.Module, z: Tensor, uniforms: Tensor | None,
                           mix: BackgroundMix | None, precision: str = "fp32") -> Tensor:
    """The stage-3 backgrounds ``[n, 1, S, S]`` the classifier is shown: the generator's
    output for noise ``z``, sampled with ``uniforms`` (``sample_background``) and mixed as
    ``mix`` says (``apply_mix``; None keeps every sampled background)."""
    soft = forward(fb, z, precision=precision)
    return apply_mix(sample_background(soft, uniforms), soft, mix)


def scoring_precision(opts: TrainOptions) -> str:
    """The precision of the family search's scoring passes: ``family_precision``, except
    that a bf16 run (``precision``) scores in bf16 too."""
    return opts.family_precision if opts.precision == "fp32" else opts.precision


def _mine_family_rows(f: nn.Module, batch: AdversarialBatch, b: Tensor, precision: str
                      ) -> Tensor:
    """``b`` with each family sample's background replaced by its hardest candidate for
    ``f`` (``family_backgrounds.hardest``)."""
    mix = batch.mix
    rows = (mix.kind == FAMILY).nonzero().squeeze(1)
    if not rows.numel() or (mix.family.backgrounds.shape[0] == 1
                            and not len(mix.family.move_keys)):
        return b
    on = rows.to(b.device)
    candidates = mix.family.rows(rows)
    maps = None if batch.intensity is None else batch.intensity.rows(rows)
    b = b.clone()
    b[on] = hardest(f, batch.x[on], batch.y[on], batch.m[on], candidates, maps, precision)
    return b


def adversarial_step(model: nn.Module, f: nn.Module, fb: nn.Module | None,
                     optimizers: list[torch.optim.Optimizer], batch: AdversarialBatch,
                     opts: TrainOptions,
                     reduce: Callable[[list[nn.Parameter]], None] | None = None
                     ) -> AdversarialOutcome:
    """Stage 3: a classifier step of ``model`` (``f``, wrapped for DDP or not) on composites
    with ``fb``'s backgrounds sampled and mixed as ``batch`` draws them (or ``batch.z`` as
    the backgrounds when ``fb`` is None; family samples mined for ``f``), then one generator
    step of ``fb`` against ``f`` per ``batch.generator_uniforms`` (``reduce``: the
    cross-process gradient average)."""
    if fb is None:
        b = batch.z
    else:
        with torch.no_grad():
            b = classifier_backgrounds(fb, batch.z, batch.uniforms, batch.mix, opts.precision)
        if batch.mix is not None and batch.mix.family is not None:
            b = _mine_family_rows(f, batch, b, scoring_precision(opts))
    loss, logits, area, bg_mean = adversarial_classifier_step(
        model, optimizers[0], batch.x, batch.y, batch.m, b, batch.intensity, opts.precision)
    gen_ce: Tensor | float = 0.0
    for u in batch.generator_uniforms:
        gen_ce = generator_step(f, fb, optimizers[1], batch.x, batch.y, batch.m, batch.z, u,
                                opts.bg_limit, opts.bg_weight, reduce, opts.precision)
    return AdversarialOutcome(loss, logits, area, bg_mean, gen_ce)
