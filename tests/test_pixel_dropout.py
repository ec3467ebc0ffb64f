import pytest
import torch

from bgbench.errors import ParameterError
from bgbench.provenance import options_sha256
from bgbench.train import pixel_dropout as P
from bgbench.train.config import TrainOptions, resolve


def test_share_zero_draws_nothing():
    g = torch.Generator().manual_seed(5)
    assert P.draw_pixel_dropout(16, 8, g, 0.0) is None
    assert torch.equal(torch.rand(3, generator=g),
                       torch.rand(3, generator=torch.Generator().manual_seed(5)))


def test_share_and_rates_are_as_documented():
    n, size = 4000, 16
    keep = P.draw_pixel_dropout(n, size, torch.Generator().manual_seed(0), 0.4)
    assert keep.shape == (n, 1, size, size) and keep.dtype == torch.float32
    assert set(keep.unique().tolist()) <= {0.0, 1.0}
    dropped = 1 - keep.mean(dim=(1, 2, 3))
    holed = dropped > 0
    # Rates are uniform in [0, MAX_RATE]: a holed image loses MAX_RATE / 2 of its pixels on
    # average, none loses much more than MAX_RATE, and the untouched rest is exactly 1.
    assert holed.float().mean().item() == pytest.approx(0.4, abs=0.03)
    assert dropped[holed].mean().item() == pytest.approx(P.MAX_RATE / 2, abs=0.01)
    assert dropped.max().item() < P.MAX_RATE + 0.1


def test_draw_is_reproducible():
    a = P.draw_pixel_dropout(64, 8, torch.Generator().manual_seed(2), 0.5)
    b = P.draw_pixel_dropout(64, 8, torch.Generator().manual_seed(2), 0.5)
    assert torch.equal(a, b)


def test_unrecorded_where_off():
    """At 0 the option is not written to config.json, so the options hash of a run without
    it (made before the option existed, or since) is what it was before it existed."""
    assert TrainOptions().pixel_dropout_share == resolve("full").pixel_dropout_share == 0.3
    assert resolve("faithful").pixel_dropout_share == 0.0
    without = resolve("full", {"pixel_dropout_share": 0.0}).as_dict()
    assert "pixel_dropout_share" not in without
    with_it = resolve("full").as_dict()
    assert with_it["pixel_dropout_share"] == 0.3
    assert options_sha256(with_it) != options_sha256(without)


def test_bad_share_is_named():
    with pytest.raises(ValueError, match="pixel-dropout share"):
        P.draw_pixel_dropout(4, 8, torch.Generator(), 1.5)
    with pytest.raises(ParameterError, match="pixel_dropout_share"):
        TrainOptions(pixel_dropout_share=-0.1)


@pytest.mark.usefixtures("one_torch_thread")
def test_a_run_with_pixel_dropout_repeats_and_differs_from_one_without(tmp_path):
    from bgbench.train import make_config, train
    from bgbench.train.data import synthetic

    tiny = {"epochs": 1, "mask_epochs": 1, "adv_epochs": 1, "batch_size": 32, "val_size": 64,
            "unet_width": 4, "gen_width": 8}
    data = synthetic(160, seed=0)
    weights = {}
    for run, share in (("a", 0.5), ("b", 0.5), ("off", 0.0)):
        config = make_config("synthetic", "proposal", "quick", seed=0,
                             overrides={**tiny, "pixel_dropout_share": share})
        train(config, tmp_path / run, quiet=True, tensors=data)
        weights[run] = torch.load(tmp_path / run / "classifier.pt", weights_only=True)
    assert all(torch.equal(weights["a"][k], weights["b"][k]) for k in weights["a"])
    assert not all(torch.equal(weights["a"][k], weights["off"][k]) for k in weights["a"])
