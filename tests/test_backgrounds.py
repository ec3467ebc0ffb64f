import hashlib

import numpy as np
import pytest
from skimage.morphology import disk

from bgbench import backgrounds as B
from bgbench.errors import BgbenchError

# Pixel counts and SHA-256 prefixes of the paper's backgrounds (docs/backgrounds.md).
EXPECTED = {
    "stripes": (207, "b34bbc2d70e8d89d"),
    "board": (512, "53972d97ce4e5c4d"),
    "border": (240, "1da09c2da647ceee"),
    "circles": (128, "eb30ac7f814f529e"),
    "clock": (218, "ee74259689a8d840"),
    "random": (256, "9d1f0bf9e4469a57"),
}


def test_registry_is_the_papers_six_in_order():
    assert list(B.BACKGROUNDS) == list(EXPECTED)


@pytest.mark.parametrize("name", EXPECTED)
def test_background_pinned(name):
    bg = B.background(name)
    assert bg.dtype == np.uint8 and bg.shape == (32, 32)
    assert set(np.unique(bg)) <= {0, 1}
    pixels, digest = EXPECTED[name]
    assert int(bg.sum()) == pixels
    assert hashlib.sha256(bg.tobytes(order="C")).hexdigest()[:16] == digest


def test_unknown_background_names_choices():
    with pytest.raises(BgbenchError, match="choose from stripes"):
        B.background("plaid")


def test_noise_rates_are_the_papers_twenty():
    expected = [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09,
                0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert list(B.NOISE_RATES) == expected


@pytest.mark.parametrize("rate", B.NOISE_RATES)
def test_noise_pixel_count_and_seed(rate):
    bg = B.noise(rate)
    assert int(bg.sum()) == int(32 * 32 * rate)
    # Drawn from RandomState(0): the chosen flat indices are exactly that draw.
    idx = np.random.RandomState(0).choice(1024, int(1024 * rate), replace=False)
    assert np.array_equal(np.flatnonzero(bg), np.sort(idx))


def test_random_is_the_quarter_noise():
    assert np.array_equal(B.random(), B.noise(0.25))


def test_noise_rate_out_of_range():
    with pytest.raises(BgbenchError, match=r"\[0, 1\]"):
        B.noise(1.5)


def test_pad_by_two_with_zeros():
    x = np.random.RandomState(1).randint(1, 256, size=(3, 28, 28)).astype(np.uint8)
    p = B.pad(x)
    assert p.shape == (3, 32, 32)
    assert np.array_equal(p[:, 2:30, 2:30], x)
    ring = p.copy()
    ring[:, 2:30, 2:30] = 0
    assert not ring.any()


def _brute_force_foreground(images: np.ndarray) -> np.ndarray:
    """Every pixel within Euclidean distance 2 of a non-zero pixel (disk of radius 2)."""
    n, h, w = images.shape
    out = np.zeros(images.shape, bool)
    for k, y, x in zip(*np.nonzero(images), strict=True):
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                if dy * dy + dx * dx <= 4 and 0 <= y + dy < h and 0 <= x + dx < w:
                    out[k, y + dy, x + dx] = True
    return out


def _sparse_images(seed: int, n: int, density: float) -> np.ndarray:
    rng = np.random.RandomState(seed)
    return ((rng.rand(n, 32, 32) < density) * rng.randint(1, 256, (n, 32, 32))).astype(np.uint8)


def test_disk_footprint_is_euclidean_radius_two():
    ys, xs = np.mgrid[-2:3, -2:3]
    assert np.array_equal(disk(2).astype(bool), ys**2 + xs**2 <= 4)


def test_foreground_matches_disk_dilation():
    images = _sparse_images(2, 5, 0.03)
    images[0, 0, 0] = 200  # corners exercise the image border
    images[1, 31, 31] = 1
    assert np.array_equal(B.foreground(images), _brute_force_foreground(images))


def test_apply_reference_semantics():
    images = _sparse_images(3, 4, 0.05)
    bg = B.background("board")
    out = B.apply_reference(images, bg)
    assert out.shape == (4, 1, 32, 32) and out.dtype == np.float32
    fg = _brute_force_foreground(images)
    assert np.array_equal(out[:, 0][fg], images[fg].astype(np.float32) / np.float32(255))
    outside = np.broadcast_to(bg.astype(np.float32), fg.shape)[~fg]
    assert np.array_equal(out[:, 0][~fg], outside)


def test_apply_matches_reference_bit_for_bit():
    pytest.importorskip("bgbench._core")
    images = _sparse_images(4, 64, 0.1)
    for name in B.BACKGROUNDS:
        bg = B.background(name)
        assert np.array_equal(B.apply(images, bg), B.apply_reference(images, bg))


def test_apply_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="does not match"):
        B.apply_reference(np.zeros((2, 28, 28), np.uint8), B.background("board"))
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        B.apply_reference(np.zeros((2, 1, 32, 32), np.uint8), B.background("board"))


def test_apply_rejects_integer_images_that_are_not_uint8():
    with pytest.raises(TypeError, match="uint8"):
        B.apply_reference(np.zeros((2, 32, 32), np.int64), B.background("board"))


def test_gallery_command_refuses_to_overwrite(tmp_path, capsys):
    from bgbench.cli import main

    out = tmp_path / "g.png"
    out.write_bytes(b"keep me")
    assert main(["backgrounds", "show", "--out", str(out)]) == 2
    assert "choose another --out or pass --force" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"
