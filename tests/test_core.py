"""The torch-free core (bgbench._core.build_test_set) against the numpy + scikit-image reference."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.ndimage import binary_dilation
from skimage.morphology import disk

from bgbench import backgrounds as B

_core = pytest.importorskip("bgbench._core")


def sparse_images(rng: np.random.Generator, shape, dtype, density=0.05) -> np.ndarray:
    keep = rng.random(shape) < density
    if dtype == np.uint8:
        return (keep * rng.integers(1, 256, shape)).astype(np.uint8)
    return (keep * rng.random(shape)).astype(dtype)


def assert_bitwise_equal(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 6), h=st.integers(1, 40), w=st.integers(1, 80),
       dtype=st.sampled_from([np.uint8, np.float32, np.float64]),
       bg_dtype=st.sampled_from([np.uint8, np.float32]),
       density=st.sampled_from([0.0, 0.01, 0.05, 0.3, 1.0]), seed=st.integers(0, 2**32 - 1))
def test_matches_reference_bit_for_bit(n, h, w, dtype, bg_dtype, density, seed):
    rng = np.random.default_rng(seed)
    images = sparse_images(rng, (n, h, w), dtype, density)
    bg = (rng.random((h, w)) < 0.5).astype(bg_dtype)
    assert_bitwise_equal(_core.build_test_set(images, bg, B.DILATION_RADIUS, 2),
                         B.apply_reference(images, bg))


@settings(max_examples=40, deadline=None)
@given(images=hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(1, 12),
                                                st.integers(1, 12)),
                         elements=st.floats(-1, 1, width=32) | st.just(np.float32(0))))
def test_any_float_values(images):
    # Negative pixels are not foreground (the reference tests `images > 0`).
    bg = np.linspace(0, 1, images.shape[1] * images.shape[2], dtype=np.float32)
    bg = bg.reshape(images.shape[1:])
    assert_bitwise_equal(_core.build_test_set(images, bg, 2, 1), B.apply_reference(images, bg))


@pytest.mark.parametrize("radius", [0, 1, 3, 5])
def test_other_radii_match_scipy(radius):
    rng = np.random.default_rng(radius)
    images = sparse_images(rng, (20, 30, 70), np.uint8)
    bg = rng.random((30, 70)).astype(np.float32)
    fg = binary_dilation(images > 0, structure=disk(radius).astype(bool)[None])
    want = np.where(fg, B.to_float(images), bg[None])[:, None]
    assert_bitwise_equal(_core.build_test_set(images, bg, radius, 2), want)


def test_mnist_shape_all_backgrounds_and_thread_counts():
    rng = np.random.default_rng(0)
    images = B.pad(sparse_images(rng, (257, 28, 28), np.uint8, 0.2))
    for name in B.BACKGROUNDS:
        bg = B.background(name)
        want = B.apply_reference(images, bg)
        for threads in (0, 1, 2, 3):
            assert_bitwise_equal(_core.build_test_set(images, bg, 2, threads), want)
        assert_bitwise_equal(B.apply(images, bg), want)


def test_empty_batch():
    out = _core.build_test_set(np.zeros((0, 32, 32), np.uint8), np.zeros((32, 32), np.uint8))
    assert out.shape == (0, 1, 32, 32) and out.dtype == np.float32


def test_concurrent_calls_from_python_threads():
    # The GIL is released while it works: calls from several threads must not interfere.
    rng = np.random.default_rng(1)
    batches = [sparse_images(rng, (300, 32, 32), np.uint8) for _ in range(4)]
    bg = B.background("stripes")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda imgs: _core.build_test_set(imgs, bg, 2, 2), batches))
    for imgs, got in zip(batches, results, strict=True):
        assert_bitwise_equal(got, B.apply_reference(imgs, bg))


@pytest.mark.parametrize("images, bg, error, match", [
    (np.zeros((2, 4, 4), np.int16), np.zeros((4, 4), np.uint8), TypeError,
     "images must be uint8, float32 or float64, got int16"),
    (np.zeros((2, 4, 4), np.uint8), np.zeros((4, 4), np.int64), TypeError,
     "background must be uint8, float32 or float64, got int64"),
    (np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), ValueError,
     r"images must have shape \[N, H, W\], got \(4, 4\)"),
    (np.zeros((2, 4, 4), np.uint8), np.zeros((4, 5), np.uint8), ValueError,
     r"background must have shape \[H, W\] = \(4, 4\), got \(4, 5\)"),
    (np.zeros((2, 4, 8), np.uint8)[:, :, ::2], np.zeros((4, 4), np.uint8), ValueError,
     "images must be C-contiguous"),
])
def test_bad_input(images, bg, error, match):
    with pytest.raises(error, match=match):
        _core.build_test_set(images, bg, 2, 1)


def test_bad_radius_and_threads():
    images, bg = np.zeros((1, 4, 4), np.uint8), np.zeros((4, 4), np.uint8)
    with pytest.raises(ValueError, match="radius must be >= 0, got -1"):
        _core.build_test_set(images, bg, -1, 1)
    with pytest.raises(ValueError, match="threads must be >= 0, got -2"):
        _core.build_test_set(images, bg, 2, -2)


def test_core_does_not_import_torch():
    code = "import sys, bgbench._core; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
