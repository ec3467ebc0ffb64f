import pytest
import torch

from bgbench import extended
from bgbench.errors import ParameterError
from bgbench.train import intensity as I
from bgbench.train.config import TrainOptions


def test_share_zero_draws_nothing():
    g = torch.Generator().manual_seed(5)
    assert I.draw_intensity(16, g, 0.0) is None
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=torch.Generator().manual_seed(5)))


def test_maps_keep_images_in_range_and_leave_the_rest_alone():
    n = 4000
    maps = I.draw_intensity(n, torch.Generator().manual_seed(0), 0.3)
    mapped = (maps.scale != 1) | (maps.offset != 0)
    assert mapped.float().mean().item() == pytest.approx(0.3, abs=0.03)
    a, c = maps.scale[mapped], maps.offset[mapped]
    assert a.min() >= I.MIN_SCALE and a.max() <= 1
    assert (c >= 0).all() and (a + c <= 1 + 1e-6).all()
    # The family spans low-contrast maps near black and near white (a haze).
    assert ((a < 0.35) & (c < 0.05)).any() and ((a < 0.6) & (a + c > 0.95)).any()
    x = torch.rand(n, 1, 8, 8)
    y = maps(x)
    assert y.min() >= 0 and y.max() <= 1 + 1e-6
    assert torch.equal(y[~mapped], x[~mapped])
    assert torch.allclose(y[mapped], x[mapped] * a[:, None, None, None] + c[:, None, None, None])


def test_the_suites_haze_and_contrast_maps_are_in_the_family():
    """The extended suite's haze (t*x + 1 - t) and contrast (k*x + (1 - k)*mean, mean in
    [0, 1]) are affine maps onto sub-intervals of [0, 1] with a slope of at least MIN_SCALE:
    its photometric sets measure coverage of what the option trains on, as the docs say."""
    t, k = float(extended.HAZE_TRANSMISSION), float(extended.CONTRAST_FACTOR)
    for a, c_max in ((t, 1 - t), (k, 1 - k)):
        assert I.MIN_SCALE <= a <= 1 and c_max <= 1 - a + 1e-12


def test_draw_is_reproducible_and_shardable():
    a = I.draw_intensity(100, torch.Generator().manual_seed(2), 0.5)
    b = I.draw_intensity(100, torch.Generator().manual_seed(2), 0.5)
    assert torch.equal(a.scale, b.scale) and torch.equal(a.offset, b.offset)
    half = a.rows(slice(50, 100))
    assert torch.equal(half.scale, a.scale[50:]) and torch.equal(half.offset, a.offset[50:])


def test_bad_share_is_named():
    with pytest.raises(ValueError, match="intensity share"):
        I.draw_intensity(4, torch.Generator(), 1.5)
    with pytest.raises(ParameterError, match="intensity_share"):
        TrainOptions(intensity_share=-0.1)
