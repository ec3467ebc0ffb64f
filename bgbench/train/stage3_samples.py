"""What stage 3 shows the classifier, for a trained run: images, their stage-3 masks, the
backgrounds sampled from the background generator, and the composites (the report's
generator figure draws them)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from bgbench.ops import composite
from bgbench.train.config import TrainOptions
from bgbench.train.masks import stage3_mask
from bgbench.train.steps import classifier_backgrounds, uniforms

SAMPLES_SEED = 0


def stage3_samples(opts: TrainOptions, mask_generator: nn.Module,
                   background_generator: nn.Module, x: Tensor,
                   seed: int = SAMPLES_SEED) -> dict[str, Tensor]:
    """For images ``x`` ``[n, 1, 32, 32]``: ``image`` (``x``), ``mask`` (the mask generator's
    output after the run's transform and dilation), ``background`` (sampled from the
    background generator's output as the run's ``bg_sample`` says, noise and uniforms drawn
    from ``seed``, by the stage-3 step's own ``classifier_backgrounds``; no grey fields) and
    ``composite``, each ``[n, 1, 32, 32]``. The networks should be in
    eval mode (as ``load_generators`` returns them)."""
    n = x.shape[0]
    gen = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        m = stage3_mask(mask_generator(x), opts.mask_transform, opts.area_limit,
                        opts.mask_dilation)
        z = background_generator.sample_noise(n, generator=gen)
        u = uniforms(n, x.shape[-1], opts.bg_sample, gen)
        b = classifier_backgrounds(background_generator, z, u, None, opts.precision)
        composed = composite(x, m, b)[0]
    return {"image": x, "mask": m, "background": b, "composite": composed}
