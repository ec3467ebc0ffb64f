"""Stage 3's family backgrounds: admissible members of the named families, the hardest of K
per image refined by local moves, and nothing drawn (the same runs as before) when the share
is 0."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bgbench.attack import families as fams
from bgbench.errors import ParameterError
from bgbench.train import bg_mix as M
from bgbench.train import family_backgrounds as FB
from bgbench.train.config import DEFAULT_TRAIN_FAMILIES, TrainOptions, resolve, train_families
from bgbench.train.steps import AdversarialBatch, _mine_family_rows


def test_candidates_are_admissible_members_only_where_chosen():
    chosen = torch.arange(50) % 3 == 0
    drawn_all = FB.draw_candidates(chosen, 32, torch.Generator().manual_seed(0), 3,
                                   ("stripes", "noise"))
    out = drawn_all.backgrounds
    assert out.shape == (3, 50, 1, 32, 32)
    # Each candidate's family and parameters draw its background, as the attack draws them.
    named = {fams.NAMES.index("stripes"), fams.NAMES.index("noise")}
    assert set(drawn_all.family[:, chosen.numpy()].ravel()) <= named
    assert (drawn_all.family[:, ~chosen.numpy()] == -1).all()
    for k, i in ((0, 0), (2, 3)):
        fam = fams.NAMES[drawn_all.family[k, i]]
        p = drawn_all.params[k, i, :len(fams.FAMILIES[fam].params)]
        expected = fams.draw_bytes(fam, p[None], 32)[0]
        assert torch.equal(out[k, i, 0], torch.from_numpy(expected).float() / 255)
    assert drawn_all.move_keys.shape == (0, 50)
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
    grey = FB.draw_candidates(chosen, 32, torch.Generator().manual_seed(1), 2,
                              ("grey",)).backgrounds
    flat = grey.flatten(2)
    assert torch.equal(flat.amax(2), flat.amin(2))  # constant levels only
    assert len(torch.unique(flat[..., 0])) > 10


def test_candidates_are_seeded():
    chosen = torch.rand(64, generator=torch.Generator().manual_seed(2)) < 0.5
    def draw(seed: int, moves: int = 0) -> FB.Candidates:
        return FB.draw_candidates(chosen, 32, torch.Generator().manual_seed(seed), 4,
                                  DEFAULT_TRAIN_FAMILIES, moves)

    a, b, c = draw(3).backgrounds, draw(3).backgrounds, draw(4).backgrounds
    assert torch.equal(a, b) and not torch.equal(a, c)
    # Move keys are drawn after the members: the members do not change with them.
    moved = draw(3, moves=2)
    assert torch.equal(moved.backgrounds, a) and moved.move_keys.shape == (2, 64)
    assert np.array_equal(moved.move_keys, draw(3, moves=2).move_keys)
    with pytest.raises(ValueError, match="moves"):
        draw(3, moves=-1)


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
    out = FB.hardest(MeanScorer(), x, y, m, unmoved(candidates))
    f = MeanScorer()
    for i in range(n):
        losses = [F.cross_entropy(f((m[i] * x[i] + (1 - m[i]) * candidates[j, i])[None]), y[i:i + 1])
                  for j in range(k)]
        assert torch.equal(out[i], candidates[int(torch.stack(losses).argmax()), i])
    assert torch.equal(FB.hardest(f, x, y, m, unmoved(candidates[:1])), candidates[0])


def unmoved(backgrounds: torch.Tensor) -> FB.Candidates:
    """Candidates of these backgrounds, no moves (their family and parameters unused)."""
    k, n = backgrounds.shape[:2]
    return FB.Candidates(backgrounds, np.zeros((k, n), np.int64),
                         np.zeros((k, n, fams.MAX_PARAMS), np.int64), np.zeros((0, n), np.uint64))


def test_moves_keep_only_what_raises_the_cross_entropy():
    g = torch.Generator().manual_seed(9)
    n = 40
    x = torch.rand(n, 1, 32, 32, generator=g)
    m = (torch.rand(n, 1, 32, 32, generator=g) < 0.3).float()
    y = torch.zeros(n, dtype=torch.long)
    chosen = torch.ones(n, dtype=torch.bool)
    families = ("stripes", "board", "grey")
    start = FB.draw_candidates(chosen, 32, torch.Generator().manual_seed(10), 2, families)
    moved = FB.draw_candidates(chosen, 32, torch.Generator().manual_seed(10), 2, families, 6)
    f = MeanScorer()

    def loss(b: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(f(m * x + (1 - m) * b), y, reduction="none")

    before, after = FB.hardest(f, x, y, m, start), FB.hardest(f, x, y, m, moved)
    assert (loss(after) >= loss(before)).all() and (loss(after) > loss(before)).any()
    # Still members of the threat model: bytes, mean at most half.
    bytes_ = after * 255
    assert torch.equal(bytes_, bytes_.round()) and (bytes_.mean(dim=(1, 2, 3)) <= 127.5).all()
    # One move from the hardest, kept only where it beats it (by hand for the first image).
    best = int(torch.stack([loss(b)[0] for b in start.backgrounds[:, :1]]).argmax())
    parent = FB.members.Members(start.family[best, :1], start.params[best, :1],
                                (start.backgrounds[best, :1, 0] * 255).to(torch.uint8).numpy())
    child = FB.members.move(parent, moved.move_keys[0, :1], 32)
    one = FB.Candidates(moved.backgrounds, moved.family, moved.params, moved.move_keys[:1])
    child_b = torch.from_numpy(child.bytes).float()[:, None] / 255
    kept = child_b if loss(child_b[:1].expand(n, -1, -1, -1))[0] > loss(before)[0] else before[:1]
    assert torch.equal(FB.hardest(f, x, y, m, one)[:1], kept)


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
    assert torch.equal(out[rows], mix.family.backgrounds[0, rows])
    shard = mix.rows(slice(10, 20))
    assert torch.equal(shard.family.backgrounds, mix.family.backgrounds[:, 10:20])
    assert np.array_equal(shard.family.params, mix.family.params[:, 10:20])
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
    expected = FB.hardest(MeanScorer(), x[rows], y[rows], m[rows], mix.family.rows(rows))
    assert torch.equal(out[rows], expected)
    # Darkness scores class 0, so the hardest candidate is the brightest.
    means = mix.family.backgrounds[:, rows].mean(dim=(2, 3, 4))
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


def test_unrecorded_where_off_so_configs_without_them_read_as_they_ran():
    off = {"family_share": 0.0, "family_candidates": 1, "family_moves": 0}
    family_keys = {*off, "train_families"}
    assert not family_keys & set(resolve("faithful").as_dict())
    # A config.json written before the options existed (none of them recorded) reads as a
    # run without them.
    recorded = resolve("full", off).as_dict()
    assert not family_keys & set(recorded)
    assert TrainOptions.from_dict(recorded) == resolve("full", off)
    full = resolve("full").as_dict()
    assert (full["family_share"], full["family_candidates"], full["family_moves"],
            full["family_precision"]) == (0.5, 8, 4, "bf16")
    assert TrainOptions.from_dict(full) == resolve("full")


@pytest.mark.usefixtures("one_torch_thread")
def test_a_run_with_mined_and_moved_family_backgrounds_trains_and_repeats(tmp_path):
    from bgbench.train import make_config, train
    from bgbench.train.data import synthetic

    tiny = {"epochs": 1, "mask_epochs": 1, "adv_epochs": 1, "batch_size": 32, "val_size": 64,
            "unet_width": 4, "gen_width": 8, "family_share": 0.5, "family_candidates": 2,
            "family_moves": 2}
    data = synthetic(160, seed=0)
    config = make_config("synthetic", "proposal", "quick", seed=0, overrides=tiny)
    assert config.options.family_moves == 2
    for run in ("a", "b"):
        train(config, tmp_path / run, quiet=True, tensors=data)
    a = torch.load(tmp_path / "a" / "classifier.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "classifier.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    recorded = json.loads((tmp_path / "a" / "config.json").read_text())["options"]
    assert (recorded["family_share"], recorded["family_moves"]) == (0.5, 2)
