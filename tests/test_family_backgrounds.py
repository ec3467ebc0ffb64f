"""Stage 3's family backgrounds: admissible members of the named families, the hardest of K
per image, and nothing drawn (the same runs as before) when the share is 0."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bgbench.errors import ParameterError
from bgbench.train import bg_mix as M
from bgbench.train import family_backgrounds as FB
from bgbench.train.config import DEFAULT_TRAIN_FAMILIES, TrainOptions, resolve, train_families
from bgbench.train.steps import AdversarialBatch, _mine_family_rows


def test_candidates_are_admissible_members_only_where_chosen():
    chosen = torch.arange(50) % 3 == 0
    out = FB.draw_candidates(chosen, 32, torch.Generator().manual_seed(0), 3, ("stripes", "noise"))
    assert out.shape == (3, 50, 1, 32, 32)
    assert torch.equal(out[:, ~chosen], torch.zeros_like(out[:, ~chosen]))
    drawn = out[:, chosen]
    assert drawn.min() >= 0 and drawn.max() <= 1
    # The threat model's mean rule, on the bytes the attack draws.
    assert (torch.round(drawn * 255).mean(dim=(2, 3, 4)) <= 127.5).all()
    # Binary families: every pixel is 0 or 1; distinct members per candidate.
    assert torch.equal(drawn, drawn.round())
    assert not torch.equal(drawn[0], drawn[1])


def test_candidates_come_from_the_named_families():
    chosen = torch.ones(40, dtype=torch.bool)
    grey = FB.draw_candidates(chosen, 32, torch.Generator().manual_seed(1), 2, ("grey",))
    flat = grey.flatten(2)
    assert torch.equal(flat.amax(2), flat.amin(2))  # constant levels only
    assert len(torch.unique(flat[..., 0])) > 10


def test_candidates_are_seeded():
    chosen = torch.rand(64, generator=torch.Generator().manual_seed(2)) < 0.5
    a = FB.draw_candidates(chosen, 32, torch.Generator().manual_seed(3), 4, DEFAULT_TRAIN_FAMILIES)
    b = FB.draw_candidates(chosen, 32, torch.Generator().manual_seed(3), 4, DEFAULT_TRAIN_FAMILIES)
    c = FB.draw_candidates(chosen, 32, torch.Generator().manual_seed(4), 4, DEFAULT_TRAIN_FAMILIES)
    assert torch.equal(a, b) and not torch.equal(a, c)


class MeanScorer(nn.Module):
    """Logits that favour class 0 more the darker the input: a background's cross-entropy
    for label 0 grows with its mean."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        level = x.mean(dim=(1, 2, 3))
        return torch.stack([-4 * level, torch.zeros_like(level)], dim=1)


def test_hardest_is_the_highest_cross_entropy_candidate():
    g = torch.Generator().manual_seed(5)
    n, k = 30, 5
    x = torch.rand(n, 1, 32, 32, generator=g)
    m = (torch.rand(n, 1, 32, 32, generator=g) < 0.3).float()
    y = torch.zeros(n, dtype=torch.long)
    candidates = torch.rand(k, n, 1, 32, 32, generator=g) * torch.rand(k, n, 1, 1, 1, generator=g)
    out = FB.hardest(MeanScorer(), x, y, m, candidates)
    f = MeanScorer()
    for i in range(n):
        losses = [F.cross_entropy(f((m[i] * x[i] + (1 - m[i]) * candidates[j, i])[None]), y[i:i + 1])
                  for j in range(k)]
        assert torch.equal(out[i], candidates[int(torch.stack(losses).argmax()), i])
    assert torch.equal(FB.hardest(f, x, y, m, candidates[:1]), candidates[0])


def test_no_family_share_draws_as_before():
    a, b = torch.Generator().manual_seed(6), torch.Generator().manual_seed(6)
    old = M.draw_mix(200, 32, a, 0.1, 0.2)
    new = M.draw_mix(200, 32, b, 0.1, 0.2, family_share=0.0, family_candidates=8,
                     families=("grey",))
    assert new.family is None and torch.equal(old.kind, new.kind)
    assert torch.equal(old.grey, new.grey)
    assert torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b))
    assert M.draw_mix(10, 32, torch.Generator(), family_share=0.0) is None


def test_family_share_takes_from_the_binary_backgrounds():
    n = 4000
    mix = M.draw_mix(n, 32, torch.Generator().manual_seed(7), 0.1, 0.2, family_share=0.3,
                     family_candidates=2, families=("board",))
    counts = torch.bincount(mix.kind, minlength=4).double() / n
    assert counts.tolist() == pytest.approx([0.4, 0.1, 0.2, 0.3], abs=0.03)
    binary = torch.zeros(n, 1, 32, 32)
    out = M.apply_mix(binary, torch.ones(n, 1, 32, 32), mix)
    rows = mix.kind == M.FAMILY
    assert torch.equal(out[rows], mix.family[0, rows])
    shard = mix.rows(slice(10, 20))
    assert torch.equal(shard.family, mix.family[:, 10:20])
    with pytest.raises(ValueError, match="family_share"):
        M.draw_mix(4, 32, torch.Generator(), 0.5, 0.3, family_share=0.3)


def test_stage3_step_shows_each_family_sample_its_hardest_candidate():
    n = 64
    g = torch.Generator().manual_seed(8)
    mix = M.draw_mix(n, 32, g, 0.0, 0.2, family_share=0.5, family_candidates=4,
                     families=("grey", "smooth"))
    x = torch.rand(n, 1, 32, 32, generator=g)
    m = (torch.rand(n, 1, 32, 32, generator=g) < 0.3).float()
    y = torch.zeros(n, dtype=torch.long)
    batch = AdversarialBatch(x, y, m, torch.zeros(n), None, mix, None, ())
    b = M.apply_mix(torch.zeros(n, 1, 32, 32), torch.zeros(n, 1, 32, 32), mix)
    out = _mine_family_rows(MeanScorer(), batch, b, "fp32")
    rows = mix.kind == M.FAMILY
    assert torch.equal(out[~rows], b[~rows])
    expected = FB.hardest(MeanScorer(), x[rows], y[rows], m[rows], mix.family[:, rows])
    assert torch.equal(out[rows], expected)
    # Darkness scores class 0, so the hardest candidate is the brightest.
    means = mix.family[:, rows].mean(dim=(2, 3, 4))
    assert torch.equal(out[rows].mean(dim=(1, 2, 3)), means.amax(0))


def test_options_check_the_families_and_the_shares():
    assert train_families(resolve("full")) == DEFAULT_TRAIN_FAMILIES
    opts = resolve("full", {"family_share": 0.3, "train_families": "grey, ramp"})
    assert train_families(opts) == ("grey", "ramp")
    for bad, match in (("dots", "unknown dots"), ("grey,grey", "named twice"), ("", "none")):
        with pytest.raises(ParameterError, match=match):
            resolve("full", {"train_families": bad})
    with pytest.raises(ParameterError, match="family_share"):
        resolve("full", {"family_share": 0.9})


def test_off_at_the_defaults_so_recorded_configs_are_unchanged():
    recorded = resolve("full").as_dict()
    assert not {"family_share", "family_candidates", "train_families"} & set(recorded)
    assert TrainOptions.from_dict(recorded) == resolve("full")
    on = resolve("full", {"family_share": 0.3, "family_candidates": 4}).as_dict()
    assert on["family_share"] == 0.3 and on["family_candidates"] == 4
    assert TrainOptions.from_dict(on).family_share == 0.3
