"""The stage-3 samples of a run (the report's generator figure): masks, sampled backgrounds
and composites as the run's options make them."""

from __future__ import annotations

import pytest
import torch

from bgbench.ops import composite
from bgbench.train.config import resolve
from bgbench.train.data import synthetic
from bgbench.train.masks import stage3_mask
from bgbench.train.stage3_samples import stage3_samples
from bgbench.train.stages import build_models
from bgbench.train.steps import sample_background, uniforms

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("bg_sample", ["blocks", "none"])
def test_samples_are_the_runs_masks_backgrounds_and_composites(bg_sample):
    opts = resolve("quick", {"unet_width": 4, "gen_width": 8, "bg_sample": bg_sample})
    torch.manual_seed(0)
    nets = build_models("proposal", opts)
    fm, fb = nets["mask_generator"].eval(), nets["background_generator"].eval()
    x = synthetic(6, seed=0)[0]
    got = stage3_samples(opts, fm, fb, x)

    gen = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        m = stage3_mask(fm(x), opts.mask_transform, opts.area_limit, opts.mask_dilation)
        b = fb(fb.sample_noise(6, generator=gen))
        b = sample_background(b, uniforms(6, b.shape[-1], opts.bg_sample, gen))
    assert list(got) == ["image", "mask", "background", "composite"]
    assert torch.equal(got["image"], x)
    assert torch.equal(got["mask"], m)
    assert torch.equal(got["background"], b)
    assert torch.equal(got["composite"], composite(x, m, b)[0])
    # Straight-through sampling: ``hard + b - b``, binary up to rounding.
    binary = torch.allclose(b, b.round(), atol=1e-6)
    assert binary == (bg_sample != "none")
    again = stage3_samples(opts, fm, fb, x)
    assert all(torch.equal(got[k], again[k]) for k in got)
