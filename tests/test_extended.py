import hashlib
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest

from bgbench import extended as E
from bgbench.backgrounds import foreground
from bgbench.errors import BgbenchError

# SHA-256 prefixes of each set applied to ``fixed_images(S)``: a change to any definition,
# to the quantisation or to a seed shows here.
CHECKSUMS = {
    ("grey-0.25", 32): "250704e47f3e311c",
    ("grey-0.5", 32): "66eb9b2c5c4c5093",
    ("grey-0.75", 32): "f391da6bd51ccabb",
    ("gradient-h", 32): "ad31c957686bac2f",
    ("gradient-v", 32): "905ea5d28049cc2a",
    ("smooth-4", 32): "11c5ece2d92c4e11",
    ("smooth-8", 32): "dcaa88666876a60f",
    ("brightness", 32): "aa9153a5303bbe66",
    ("contrast", 32): "afd4876c6580fe7e",
    ("haze", 32): "801b3af0c122e3e9",
    ("shot-noise", 32): "a80c20a6d8780660",
    ("grey-0.25", 28): "dabfe4c94c06ce46",
    ("grey-0.5", 28): "5b434dc68563534b",
    ("grey-0.75", 28): "472968d945a812d1",
    ("gradient-h", 28): "1fa770c547614a24",
    ("gradient-v", 28): "89fb6c2e8afcf96f",
    ("smooth-4", 28): "cd9cfaddc43f0901",
    ("smooth-8", 28): "6bc028b28011f24d",
    ("brightness", 28): "8ef18c098e7ef9fb",
    ("contrast", 28): "a4c10034dd7aaba2",
    ("haze", 28): "aea7057f6ccddb8c",
    ("shot-noise", 28): "9a1dd9a5d1c64ec9",
}
SIZES = (32, 28)


def fixed_images(size: int) -> np.ndarray:
    """Four images: a white bar, a graded disk, an empty image (all background), and a
    16x16 square holding every byte value 0..255."""
    imgs = np.zeros((4, size, size), np.uint8)
    c = size // 2
    imgs[0, c - 6:c + 6, c - 2:c + 2] = 255
    yy, xx = np.mgrid[0:size, 0:size]
    disk = (yy - c) ** 2 + (xx - c + 3) ** 2 <= 36
    imgs[1][disk] = ((yy * 7 + xx * 13) % 256)[disk]
    imgs[3, c - 8:c + 8, c - 8:c + 8] = np.arange(256).reshape(16, 16)
    return imgs


def build(name: str, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images = fixed_images(size)
    mask = foreground(images)
    return images, mask, E.extended_test_set(name, images, mask)


def test_names_and_kinds_in_order():
    assert E.NAMES == ("grey-0.25", "grey-0.5", "grey-0.75", "gradient-h", "gradient-v",
                       "smooth-4", "smooth-8", "brightness", "contrast", "haze", "shot-noise")
    assert E.BACKGROUND_SETS == E.NAMES[:7] and E.PHOTOMETRIC_SETS == E.NAMES[7:]
    assert [E.kind(n) for n in E.NAMES] == [E.BACKGROUND] * 7 + [E.PHOTOMETRIC] * 4
    assert all(E.definition(n) for n in E.NAMES)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", E.NAMES)
def test_checksum_pinned(name, size):
    _, _, out = build(name, size)
    assert out.dtype == np.uint8 and out.shape == (4, size, size)
    assert hashlib.sha256(out.tobytes()).hexdigest()[:16] == CHECKSUMS[(name, size)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", E.BACKGROUND_SETS)
def test_background_sets_keep_the_object_and_replace_the_rest(name, size):
    images, mask, out = build(name, size)
    assert np.array_equal(out[mask], images[mask])
    # The empty image has no object: every pixel is the background field, which is never
    # the all-black image it replaces.
    assert not mask[2].any() and out[2].any()
    assert np.array_equal(E.extended_test_set(name, images, np.ones_like(mask)), images)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("level, byte", [(0.25, 64), (0.5, 128), (0.75, 191)])
def test_grey_levels(level, byte, size):
    _, mask, out = build(f"grey-{level}", size)
    assert set(np.unique(out[~mask])) == {byte}


@pytest.mark.parametrize("size", SIZES)
def test_gradients_are_ramps_from_0_to_255(size):
    expected = np.floor(np.arange(size) * 255 / (size - 1) + 0.5).astype(np.uint8)
    _, _, h = build("gradient-h", size)
    _, _, v = build("gradient-v", size)
    assert np.array_equal(h[2], np.tile(expected, (size, 1)))
    assert np.array_equal(v[2], h[2].T)
    assert h[2, 0, 0] == 0 and h[2, 0, -1] == 255


@pytest.mark.parametrize("grid", E.SMOOTH_GRIDS)
@pytest.mark.parametrize("size", SIZES)
def test_smooth_noise_depends_on_the_image_index_only(grid, size):
    name = f"smooth-{grid}"
    images = np.zeros((6, size, size), np.uint8)
    mask = np.zeros(images.shape, bool)
    whole = E.extended_test_set(name, images, mask)
    # Cut into batches with their offsets, or shortened: the same bytes per image.
    parts = [E.extended_test_set(name, images[lo:lo + 2], mask[lo:lo + 2], first_index=lo)
             for lo in (0, 2, 4)]
    assert np.array_equal(np.concatenate(parts), whole)
    assert np.array_equal(E.extended_test_set(name, images[:1], mask[:1]), whole[:1])
    assert len({img.tobytes() for img in whole}) == 6  # one pattern per image
    # Smooth: grid points are size/grid pixels apart, so neighbours differ by at most
    # 255 * grid / size (plus one for rounding), where per-pixel noise would reach ~255.
    for axis in (1, 2):
        assert np.abs(np.diff(whole.astype(int), axis=axis)).max() <= 255 * grid / size + 1


def test_smooth_grids_differ_and_span_the_range():
    a = E.smooth_fields(4, 32, 0, 200)
    b = E.smooth_fields(8, 32, 0, 200)
    assert not np.allclose(a, b)
    for f in (a, b):
        assert 0 <= f.min() and f.max() < 1 and f.min() < 0.05 and f.max() > 0.95


@pytest.mark.parametrize("size", SIZES)
def test_upsample_bilinear_is_torchs_half_pixel_bilinear(size):
    torch = pytest.importorskip("torch")
    grids = np.random.default_rng(3).random((5, 4, 4))
    ref = torch.nn.functional.interpolate(torch.from_numpy(grids)[:, None], size=(size, size),
                                          mode="bilinear", align_corners=False)[:, 0].numpy()
    np.testing.assert_allclose(E.upsample_bilinear(grids, size), ref, rtol=0, atol=1e-12)


def _round_half_up(value: Fraction) -> int:
    return min(max((2 * value * 255 + 1) // 2, 0), 255)


def test_brightness_shifts_every_byte_by_0_3_exactly():
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    out = E.brightness(x, np.zeros(x.shape, bool))
    expected = [_round_half_up(min(Fraction(int(v), 255) + Fraction(3, 10), Fraction(1)))
                for v in x.ravel()]
    assert out.ravel().tolist() == expected
    # 255 * 0.3 = 76.5 rounds up: a shift of 77 bytes wherever nothing clips.
    unclipped = x <= 255 - 77
    assert np.array_equal(out[unclipped].astype(int) - x[unclipped], np.full(unclipped.sum(), 77))
    assert (out[~unclipped] == 255).all()


def test_haze_is_half_transmission_to_white_exactly():
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    out = E.haze(x, np.zeros(x.shape, bool))
    expected = [_round_half_up(Fraction(int(v), 255) / 2 + Fraction(1, 2)) for v in x.ravel()]
    assert out.ravel().tolist() == expected
    assert out.min() == 128 and out.max() == 255


@pytest.mark.parametrize("size", SIZES)
def test_contrast_keeps_the_mean_and_scales_deviations_by_0_3(size):
    images, mask, out = build("contrast", size)
    for x, y in zip(images.astype(int), out.astype(int), strict=True):
        mean = Fraction(int(x.sum()), x.size * 255)
        expected = [_round_half_up(mean + Fraction(3, 10) * (Fraction(int(v), 255) - mean))
                    for v in x.ravel()]
        assert y.ravel().tolist() == expected
        assert abs(y.mean() - x.mean()) <= 0.5
        if x.std() > 0:
            assert y.std() / x.std() == pytest.approx(0.3, abs=0.02)


@pytest.mark.parametrize("name", E.PHOTOMETRIC_SETS)
def test_photometric_sets_change_the_whole_image_whatever_the_mask(name):
    images = fixed_images(32)
    a = E.extended_test_set(name, images, np.zeros(images.shape, bool))
    b = E.extended_test_set(name, images, np.ones(images.shape, bool))
    assert np.array_equal(a, b)
    # Shot noise keeps black pixels black, so the share is taken over the lit ones.
    lit = images[3] > 0
    assert (a[3] != images[3])[lit].mean() > 0.9


def test_shot_noise_follows_the_pixel_value():
    levels = np.array([0, 64, 128], np.uint8)
    images = np.repeat(levels, 64 * 64).reshape(3 * 64, 8, 8)
    out = E.extended_test_set("shot-noise", images, np.zeros(images.shape, bool))
    by_level = out.reshape(3, -1).astype(np.float64) / 255
    x = levels / 255
    c = E.SHOT_NOISE_PHOTONS
    assert (by_level[0] == 0).all()
    # Poisson(c x) / c: unbiased, variance x / c (no clipping this far below 1).
    np.testing.assert_allclose(by_level[1:].mean(1), x[1:], rtol=0.02)
    np.testing.assert_allclose(by_level[1:].var(1), x[1:] / c, rtol=0.05)
    # Every output is a photon count over c, quantised.
    assert set(np.unique(out)) <= {min(255, int(np.floor(255 * k / c + 0.5))) for k in range(256)}
    shifted = E.extended_test_set("shot-noise", images[5:9], np.zeros((4, 8, 8), bool),
                                  first_index=5)
    assert np.array_equal(shifted, out[5:9])


@pytest.mark.parametrize("name", E.NAMES)
def test_no_dependence_on_n(name):
    images, mask, out = build(name, 32)
    assert np.array_equal(E.extended_test_set(name, images[:2], mask[:2]), out[:2])
    assert np.array_equal(E.extended_test_set(name, images, mask), out)


def test_bad_input_is_named():
    images = fixed_images(32)
    mask = foreground(images)
    with pytest.raises(BgbenchError, match="choose from grey-0.25"):
        E.extended_test_set("fog", images, mask)
    with pytest.raises(TypeError, match="uint8"):
        E.extended_test_set("haze", images.astype(np.float32), mask)
    with pytest.raises(ValueError, match="square"):
        E.extended_test_set("haze", images[:, :30], mask[:, :30])
    with pytest.raises(TypeError, match="foreground"):
        E.extended_test_set("haze", images, mask.astype(np.uint8))
    with pytest.raises(ValueError, match="does not match"):
        E.extended_test_set("haze", images, mask[:2])
    with pytest.raises(ValueError, match="first_index"):
        E.extended_test_set("smooth-4", images, mask, first_index=-1)


def test_module_imports_no_torch():
    code = "import sys, bgbench.extended; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_lists_the_extended_suite(capsys):
    from bgbench.cli import main

    assert main(["backgrounds", "list", "--suite", "extended"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    assert [line.split()[:2] for line in lines] == [[n, E.kind(n)] for n in E.NAMES]


def test_extended_gallery(tmp_path):
    from bgbench.gallery import draw_gallery, extended_gallery_grid

    samples = {"synthetic": fixed_images(28)[:2]}
    rows, columns, tiles = extended_gallery_grid(samples)
    assert rows == ["blank", "synthetic #0", "synthetic #1"]
    assert columns == ["clean", *E.NAMES] and tiles.shape == (3, 1 + len(E.NAMES), 32, 32)
    padded = np.pad(samples["synthetic"], ((0, 0), (2, 2), (2, 2)))
    expected = E.extended_test_set("haze", padded, foreground(padded))[1] / np.float32(255)
    assert np.array_equal(tiles[2, columns.index("haze")], expected)
    assert (tiles[0, columns.index("grey-0.5")] == np.float32(128 / 255)).all()
    out = draw_gallery(tmp_path / "g.png", samples, suite="extended")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="choose from paper"):
        draw_gallery(tmp_path / "h.png", samples, suite="imagenet-c")
