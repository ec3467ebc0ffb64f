"""The extended test suite: grey-level and smooth backgrounds, and whole-image photometric changes.

bgbench's own benchmark beyond the paper (whose six backgrounds are all binary patterns). Each
test set is a small pure function in ``EXTENDED`` (mnist-c / ImageNet-C style) with one
size-generic signature::

    fn(images: uint8 [N, S, S], object_mask: bool [N, S, S], *, first_index: int = 0)
        -> uint8 [N, S, S]

``object_mask`` is the object region by the paper's rule, ``bgbench.backgrounds.foreground``
(non-zero pixels dilated by a disk of radius 2). A *background* set replaces every pixel
outside it and keeps every pixel inside it; a *photometric* set changes the whole image and
ignores it.

Every output is quantised to bytes (real images are 8-bit) by one rule: round half up,
``floor(255 * v + 0.5)`` of the real value ``v`` in [0, 1], clipped to 0..255. The photometric
sets are computed in exact integer arithmetic, so the rule holds exactly even where ``255 * v``
is a half (a shift of 0.3 puts every unclipped pixel at ``x + 76.5`` bytes; shot noise's
``count / 12`` is exact too); the background fields are computed in float64 and quantised by
``quantise``, exact for the grey levels and the ramps (no value is within rounding error of a
half) and for smooth noise up to float64 rounding.

Determinism: nothing depends on ``N`` or on how a set is cut into batches. The smooth-noise
backgrounds and the shot-noise counts are drawn per image from a generator seeded by the
image's index in the data set, ``first_index + i`` for ``images[i]``; a caller that builds a
set in batches passes each batch's offset as ``first_index``. ``docs/extended-suite.md`` gives
every definition and why it is there.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import numpy as np

from bgbench.errors import BgbenchError

BACKGROUND = "background"
PHOTOMETRIC = "photometric"

GREY_LEVELS: tuple[float, ...] = (0.25, 0.5, 0.75)
SMOOTH_GRIDS: tuple[int, ...] = (4, 8)
# Exact fractions: the photometric sets are computed in integer arithmetic (module docstring).
BRIGHTNESS_SHIFT = Fraction(3, 10)
CONTRAST_FACTOR = Fraction(3, 10)
HAZE_TRANSMISSION = Fraction(1, 2)
# Shot noise: photons counted at a pixel of value 1 (ImageNet-C's middle severity), and the
# first entry of each image's RandomState seed, so its stream is no other set's.
SHOT_NOISE_PHOTONS = 12
SHOT_NOISE_SEED = 5407

ExtendedSet = Callable[..., np.ndarray]


def quantise(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] to bytes: ``floor(255 * v + 0.5)`` (round half up), clipped to 0..255."""
    return np.clip(np.floor(values * 255.0 + 0.5), 0, 255).astype(np.uint8)


def _replace_background(images: np.ndarray, object_mask: np.ndarray, field: np.ndarray
                        ) -> np.ndarray:
    """``images`` inside ``object_mask``; ``field`` ([S, S] or [N, S, S] in [0, 1]) outside."""
    return np.where(object_mask, images, quantise(field))


def _grey(level: float) -> ExtendedSet:
    def grey(images: np.ndarray, object_mask: np.ndarray, *, first_index: int = 0) -> np.ndarray:
        return _replace_background(images, object_mask, np.full(images.shape[1:], level))

    grey.__doc__ = f"Background: the constant grey level {level} (byte {quantise(np.array(level))})."
    return grey


def gradient_h(images: np.ndarray, object_mask: np.ndarray, *, first_index: int = 0) -> np.ndarray:
    """Background: a horizontal ramp, ``x / (S - 1)`` in column x (0 at the left, 1 at the right)."""
    size = images.shape[-1]
    return _replace_background(images, object_mask, np.tile(np.arange(size) / (size - 1), (size, 1)))


def gradient_v(images: np.ndarray, object_mask: np.ndarray, *, first_index: int = 0) -> np.ndarray:
    """Background: a vertical ramp, ``y / (S - 1)`` in row y (0 at the top, 1 at the bottom)."""
    size = images.shape[-1]
    return _replace_background(images, object_mask,
                               np.tile(np.arange(size)[:, None] / (size - 1), (1, size)))


def _source_coordinates(grid: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    src = np.clip((np.arange(size) + 0.5) * grid / size - 0.5, 0, grid - 1)
    lo = np.floor(src).astype(np.int64)
    return lo, np.minimum(lo + 1, grid - 1), src - lo


def upsample_bilinear(grids: np.ndarray, size: int) -> np.ndarray:
    """``[N, g, g]`` float grids resampled bilinearly to ``[N, size, size]``.

    Half-pixel centres (torch's ``align_corners=False``, OpenCV's ``resize``): output pixel
    ``d`` samples the grid at ``(d + 0.5) * g / size - 0.5``, clamped to ``[0, g - 1]``; rows
    are interpolated first, then columns. Element-wise arithmetic only (no BLAS, whose
    summation order varies by platform), so the pinned checksums hold everywhere.
    """
    lo, hi, frac = _source_coordinates(grids.shape[-1], size)
    rows = grids[:, lo, :] * (1 - frac)[:, None] + grids[:, hi, :] * frac[:, None]
    return rows[:, :, lo] * (1 - frac) + rows[:, :, hi] * frac


def smooth_fields(grid: int, size: int, first_index: int, count: int) -> np.ndarray:
    """The smooth-noise fields ``[count, size, size]`` of images ``first_index ...``.

    Image ``k``'s field: ``numpy.random.RandomState([grid, k]).random_sample((grid, grid))``
    (uniform in [0, 1)) resampled to ``size x size`` by ``upsample_bilinear``. RandomState,
    like the paper's noise backgrounds, because numpy keeps its streams fixed across versions.
    """
    seeds = np.empty((count, grid, grid))
    # One generator re-seeded per image: the same stream as a fresh RandomState each time,
    # without its construction cost.
    rng = np.random.RandomState()
    for i in range(count):
        rng.seed([grid, first_index + i])
        seeds[i] = rng.random_sample((grid, grid))
    return upsample_bilinear(seeds, size)


def _smooth(grid: int) -> ExtendedSet:
    def smooth(images: np.ndarray, object_mask: np.ndarray, *, first_index: int = 0) -> np.ndarray:
        fields = smooth_fields(grid, images.shape[-1], first_index, images.shape[0])
        return _replace_background(images, object_mask, fields)

    smooth.__doc__ = (f"Background: smooth noise, uniform levels on a grid of {grid}x{grid} per "
                      "image (seeded by the image index) upsampled bilinearly.")
    return smooth


def _round_half_up(numerator: np.ndarray, denominator: int) -> np.ndarray:
    """``floor(numerator / denominator + 1/2)`` in exact integer arithmetic, as bytes."""
    return np.clip((2 * numerator + denominator) // (2 * denominator), 0, 255).astype(np.uint8)


def brightness(images: np.ndarray, object_mask: np.ndarray, *, first_index: int = 0) -> np.ndarray:
    """Photometric: every pixel raised by 0.3, clipped at 1 (``min(x + 0.3, 1)``)."""
    a, b = BRIGHTNESS_SHIFT.numerator, BRIGHTNESS_SHIFT.denominator
    # 255 * (x/255 + a/b) = (b x + 255 a) / b, in bytes.
    return _round_half_up(np.minimum(b * images.astype(np.int64) + 255 * a, 255 * b), b)


def contrast(images: np.ndarray, object_mask: np.ndarray, *, first_index: int = 0) -> np.ndarray:
    """Photometric: contrast to 0.3 about each image's mean ``m`` (``m + 0.3 (x - m)``)."""
    a, b = CONTRAST_FACTOR.numerator, CONTRAST_FACTOR.denominator
    x = images.astype(np.int64)
    pixels = images.shape[1] * images.shape[2]
    total = x.sum(axis=(1, 2), keepdims=True)
    # 255 * (m + (a/b)(x - m)) with 255 m = total / pixels: ((b - a) total + a x pixels) / (b pixels).
    return _round_half_up((b - a) * total + a * pixels * x, b * pixels)


def haze(images: np.ndarray, object_mask: np.ndarray, *, first_index: int = 0) -> np.ndarray:
    """Photometric: uniform white haze, ``t x + (1 - t) A`` with transmission 0.5, airlight 1."""
    a, b = HAZE_TRANSMISSION.numerator, HAZE_TRANSMISSION.denominator
    # 255 * (t x/255 + (1 - t) A) with t = a/b, A = 1: (a x + 255 (b - a)) / b.
    return _round_half_up(a * images.astype(np.int64) + 255 * (b - a), b)


def shot_noise(images: np.ndarray, object_mask: np.ndarray, *, first_index: int = 0
               ) -> np.ndarray:
    """Photometric: shot noise, ``Poisson(12 x) / 12`` per pixel (seeded by the image index).

    Signal-dependent: a pixel's noise grows with its value and a black pixel stays black. Image
    ``k`` draws its counts from ``numpy.random.RandomState([SHOT_NOISE_SEED, k]).poisson``;
    ``count / 12`` is quantised in exact integer arithmetic.
    """
    c = SHOT_NOISE_PHOTONS
    rates = images.astype(np.float64) * (c / 255.0)
    counts = np.empty(images.shape, dtype=np.int64)
    # One generator re-seeded per image, as in smooth_fields.
    rng = np.random.RandomState()
    for i in range(images.shape[0]):
        rng.seed([SHOT_NOISE_SEED, first_index + i])
        counts[i] = rng.poisson(rates[i])
    # 255 * count / c, in bytes.
    return _round_half_up(255 * counts, c)


EXTENDED: dict[str, ExtendedSet] = {
    **{f"grey-{level}": _grey(level) for level in GREY_LEVELS},
    "gradient-h": gradient_h,
    "gradient-v": gradient_v,
    **{f"smooth-{grid}": _smooth(grid) for grid in SMOOTH_GRIDS},
    "brightness": brightness,
    "contrast": contrast,
    "haze": haze,
    "shot-noise": shot_noise,
}
PHOTOMETRIC_SETS: tuple[str, ...] = ("brightness", "contrast", "haze", "shot-noise")
BACKGROUND_SETS: tuple[str, ...] = tuple(n for n in EXTENDED if n not in PHOTOMETRIC_SETS)
NAMES: tuple[str, ...] = tuple(EXTENDED)


def kind(name: str) -> str:
    """``background`` or ``photometric``: what the named set changes."""
    _check_name(name)
    return PHOTOMETRIC if name in PHOTOMETRIC_SETS else BACKGROUND


def definition(name: str) -> str:
    """The one-line definition of the named set (its function's docstring)."""
    _check_name(name)
    return (EXTENDED[name].__doc__ or "").strip().splitlines()[0]


def extended_test_set(name: str, images_u8: np.ndarray, object_mask: np.ndarray,
                      first_index: int = 0) -> np.ndarray:
    """The named extended test set of ``images_u8`` (``uint8 [N, S, S]``), as ``uint8 [N, S, S]``.

    ``object_mask`` is ``bgbench.backgrounds.foreground(images_u8)``. ``first_index`` is the
    data-set index of ``images_u8[0]`` (only the per-image smooth-noise patterns use it).
    """
    _check_name(name)
    if not isinstance(images_u8, np.ndarray) or images_u8.dtype != np.uint8:
        raise TypeError(f"images must be a uint8 numpy array (bytes 0..255), got "
                        f"{getattr(images_u8, 'dtype', type(images_u8).__name__)}; convert floats "
                        "in [0, 1] with extended.quantise")
    if images_u8.ndim != 3 or images_u8.shape[1] != images_u8.shape[2] or images_u8.shape[1] < 2:
        raise ValueError(f"images must be square [N, S, S] with S >= 2, got shape "
                         f"{list(images_u8.shape)}")
    if not isinstance(object_mask, np.ndarray) or object_mask.dtype != np.bool_:
        raise TypeError("object_mask must be a bool numpy array: use "
                        "bgbench.backgrounds.foreground(images)")
    if object_mask.shape != images_u8.shape:
        raise ValueError(f"object_mask shape {list(object_mask.shape)} does not match images "
                         f"{list(images_u8.shape)}")
    if first_index < 0:
        raise ValueError(f"first_index must be >= 0, got {first_index}")
    return EXTENDED[name](images_u8, object_mask, first_index=first_index)


def _check_name(name: str) -> None:
    if name not in EXTENDED:
        raise BgbenchError(f"unknown extended test set {name!r}; choose from {', '.join(EXTENDED)}")
