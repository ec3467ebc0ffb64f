
import numpy as np
import pytest
import torch
from torch import nn

from bgbench import extended
from bgbench.train import bg_mix as M
from bgbench.train.evaluate import extended_accuracy, score_run


def binary_and_soft(n: int = 64, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    soft = torch.rand(n, 1, size, size, generator=g)
    return (torch.rand(n, 1, size, size, generator=g) < soft).float(), soft


def test_default_returns_the_binary_backgrounds_and_draws_nothing():
    binary, soft = binary_and_soft()
    g = torch.Generator().manual_seed(5)
    out = M.mix_backgrounds(binary, soft, g)
    assert out is binary
    # The generator is untouched: its next draw is a fresh seed-5 generator's first.
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=torch.Generator().manual_seed(5)))


def test_shares_pick_each_kind_per_sample():
    n = 4000
    mix = M.draw_mix(n, 32, torch.Generator().manual_seed(0), soft_share=0.2, grey_share=0.3)
    counts = torch.bincount(mix.kind, minlength=3).double() / n
    assert counts.tolist() == pytest.approx([0.5, 0.2, 0.3], abs=0.03)
    binary, soft = binary_and_soft(n)
    out = M.apply_mix(binary, soft, mix)
    for kind, source in ((M.BINARY, binary), (M.SOFT, soft), (M.GREY, mix.grey)):
        rows = mix.kind == kind
        assert torch.equal(out[rows], source[rows])


def test_all_grey_spans_levels_and_grid_sizes():
    n, size = 2000, 32
    mix = M.draw_mix(n, size, torch.Generator().manual_seed(1), grey_share=1.0)
    assert (mix.kind == M.GREY).all()
    grey = mix.grey[:, 0]
    assert 0 <= grey.min() and grey.max() <= 1
    flat = grey.amax((1, 2)) - grey.amin((1, 2)) < 1e-6
    assert flat.float().mean().item() == pytest.approx(0.25, abs=0.04)  # grid 1: constants
    levels = grey[flat][:, 0, 0]
    assert levels.min() < 0.05 and levels.max() > 0.95
    # Smooth: neighbours differ by at most 8/32 of the range (the finest grid is 8).
    assert (grey[:, :, 1:] - grey[:, :, :-1]).abs().max() <= 8 / size + 1e-6


def test_draw_is_reproducible_and_shardable():
    a = M.draw_mix(100, 28, torch.Generator().manual_seed(2), 0.3, 0.3)
    b = M.draw_mix(100, 28, torch.Generator().manual_seed(2), 0.3, 0.3)
    assert torch.equal(a.kind, b.kind) and torch.equal(a.grey, b.grey)
    half = a.rows(slice(50, 100))
    assert torch.equal(half.kind, a.kind[50:]) and half.grey.shape == (50, 1, 28, 28)
    # Changing the shares changes which kind each sample gets, not the grey fields drawn.
    c = M.draw_mix(100, 28, torch.Generator().manual_seed(2), 0.1, 0.6)
    assert torch.equal(a.grey, c.grey)


def test_gradients_reach_the_sources_that_are_used():
    binary, soft = binary_and_soft(200)
    soft = soft.clone().requires_grad_(True)
    binary_st = binary + soft - soft.detach()  # straight-through, as sample_background does
    mix = M.draw_mix(200, 32, torch.Generator().manual_seed(3), 0.3, 0.3)
    M.apply_mix(binary_st, soft, mix).sum().backward()
    used = (mix.kind != M.GREY).float()
    assert torch.equal(soft.grad.sum((1, 2, 3)) / (32 * 32), used)


@pytest.mark.parametrize("shares, match", [((-0.1, 0.0), "soft_share"), ((0.0, 1.5), "grey_share"),
                                           ((0.6, 0.6), "at most 1")])
def test_bad_shares_are_named(shares, match):
    with pytest.raises(ValueError, match=match):
        M.draw_mix(4, 32, torch.Generator(), *shares)


def test_bad_grids_and_shapes_are_named():
    with pytest.raises(ValueError, match="grid sizes"):
        M.draw_mix(4, 32, torch.Generator(), 0.0, 0.5, grids=(0, 4))
    mix = M.draw_mix(4, 32, torch.Generator(), 0.0, 0.5)
    binary, soft = binary_and_soft(4, size=28)
    with pytest.raises(ValueError, match="one shape"):
        M.apply_mix(binary, soft, mix)


class Brightness(nn.Module):
    """Predicts class 1 for images brighter on average than 0.3, else 0: the extended sets
    decide its accuracy in a way that can be worked out by hand."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bright = (x.mean((1, 2, 3)) > 0.3).float()
        return torch.stack([1 - bright, bright], 1)


def test_extended_accuracy_per_set():
    images = np.zeros((4, 28, 28), np.uint8)
    images[:, 10:18, 12:16] = 255
    labels = np.zeros(4, np.int64)  # dark images: class 0 on clean
    result = extended_accuracy(Brightness(), images, labels)
    assert set(result) == {*extended.NAMES, "extended_background_average",
                           "extended_photometric_average"}
    assert result["grey-0.25"] == 1.0 and result["grey-0.75"] == 0.0
    assert result["brightness"] == 0.0 and result["haze"] == 0.0 and result["contrast"] == 1.0
    # Shot noise leaves the black background black: the image stays dark.
    assert result["shot-noise"] == 1.0
    assert result["extended_photometric_average"] == pytest.approx(2 / 4)


@pytest.mark.realdata
@pytest.mark.slow
def test_score_reads_the_validation_split_with_the_extended_suite(real_data_root, tmp_path):
    from bgbench.train import make_config, train

    config = make_config("mnist", "traditional", "quick", seed=0,
                         overrides={"epochs": 1, "train_subset": 256, "val_size": 64,
                                    "batch_size": 64})
    train(config, tmp_path / "run", data_root=real_data_root, quiet=True)
    line = score_run(tmp_path / "run", on="val", data_root=real_data_root, suite="extended")
    assert line["on"] == "val" and line["n"] == 64
    assert all(0 <= line[n] <= 1 for n in (*extended.NAMES, "clean", "stripes"))
