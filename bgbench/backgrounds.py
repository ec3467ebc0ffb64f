"""The paper's six synthetic test backgrounds, the noise sweep, and how a background is applied.

Every background is a binary ``uint8`` image of ``SIZE x SIZE`` (0 or 1), built by a small
pure function (mnist-c style). Its record in the registry ``BACKGROUNDS`` (name to
``PaperBackground``) holds that function, its 28x28 form and its column in the paper's
Table 1. A background replaces every pixel outside the object, where the object is the
non-zero pixels grown by a binary dilation with a disk of radius 2. The definitions, pixel
counts and checksums are pinned by ``tests/test_backgrounds.py`` and described in
``docs/backgrounds.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bgbench.errors import BgbenchError

SIZE = 32
PAD = 2
# The datasets' own image size: a ``SIZE`` image is one of these zero-padded by ``PAD``.
DATASET_SIZE = SIZE - 2 * PAD
DILATION_RADIUS = 2
RANDOM_FRACTION = 0.25
# The paper's Table 2: 0, 0.01, ..., 0.09, then 0.1, 0.2, ..., 1.0.
NOISE_RATES: tuple[float, ...] = tuple(round(i / 100, 2) for i in range(10)) + tuple(
    round(i / 10, 1) for i in range(1, 11)
)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:SIZE, 0:SIZE]


def stripes() -> np.ndarray:
    """Diagonal lines 2 px thick, period 10: set where (y - x) mod 10 is 0 or 9."""
    y, x = _grid()
    return np.isin((y - x) % 10, (0, 9)).astype(np.uint8)


def board() -> np.ndarray:
    """Checkerboard of 6 px squares on a grid starting at (-2, -2), top-left square 0."""
    y, x = _grid()
    return (((y + 2) // 6 + (x + 2) // 6) % 2).astype(np.uint8)


def border() -> np.ndarray:
    """A frame 2 px thick along the image edge."""
    out = np.ones((SIZE, SIZE), np.uint8)
    out[2:-2, 2:-2] = 0
    return out


def circle_perimeters(size: int, centres: list[tuple[int, int]], radii: tuple[int, ...]
                      ) -> np.ndarray:
    """A ``size x size`` background of the circle perimeters of each radius in ``radii``
    around each ``(row, column)`` centre (skimage's ``circle_perimeter``, clipped)."""
    from skimage.draw import circle_perimeter

    out = np.zeros((size, size), np.uint8)
    for r, c in centres:
        for radius in radii:
            rr, cc = circle_perimeter(r, c, radius, shape=out.shape)
            out[rr, cc] = 1
    return out


def circles() -> np.ndarray:
    """Four circle perimeters of radius 6 centred at (8,8), (24,8), (8,24), (24,24)."""
    return circle_perimeters(SIZE, [(8, 8), (24, 8), (8, 24), (24, 24)], (6,))


def clock() -> np.ndarray:
    """Circle perimeters of radius 15 and 14 at the centre, plus four ticks at 12, 3, 6, 9."""
    out = circle_perimeters(SIZE, [(16, 16)], (15, 14))
    out[15:18, 0:7] = 1
    out[15:18, 26:32] = 1
    out[0:7, 15:18] = 1
    out[26:32, 15:18] = 1
    return out


def noise(rate: float, size: int = SIZE) -> np.ndarray:
    """``int(size*size*rate)`` pixels set, drawn without replacement by RandomState(0).

    ``size`` other than ``SIZE`` gives the same definition at another image size (a 28x28
    model's noise backgrounds), which keeps the rate where a crop or a resampling would not.
    """
    if not 0.0 <= rate <= 1.0:
        raise BgbenchError(f"noise rate must be in [0, 1], got {rate}")
    count = int(size * size * rate)
    flat = np.zeros(size * size, np.uint8)
    flat[np.random.RandomState(0).choice(size * size, count, replace=False)] = 1
    return flat.reshape(size, size)


def random() -> np.ndarray:
    """Exactly 256 pixels set (a quarter), drawn by RandomState(0)."""
    return noise(RANDOM_FRACTION)


def _centre(draw: Callable[[], np.ndarray]) -> Callable[[], np.ndarray]:
    # Periodic patterns: the pixels around a digit are exactly those a 32x32 model sees there.
    return lambda: draw()[PAD:-PAD, PAD:-PAD]


def border_28() -> np.ndarray:
    """The border at 28x28: a 2-px band on every side with the four 2x2 corners clear."""
    # A full 2-px frame covers 26.5% of 28x28 (+13% over 32x32's 23.4%), a 1-px one 13.8%;
    # leaving the four 2x2 corner squares clear gives 24.5% with a 2-px band on every side.
    out = np.ones((DATASET_SIZE, DATASET_SIZE), np.uint8)
    out[2:-2, 2:-2] = 0
    for rows in (slice(0, 2), slice(-2, None)):
        for cols in (slice(0, 2), slice(-2, None)):
            out[rows, cols] = 0
    return out


def circles_28() -> np.ndarray:
    """The circles at 28x28: radius 4 at (7,7), (21,7), (7,21), (21,21)."""
    # Centres scaled by 28/32. A perimeter's pixels grow with its radius but the image area
    # with the square of the size, so radius 4 (12.2%) keeps the 12.5% share; 5 gives 14.3%.
    # Nearest resampling of the 32x32 circles breaks each perimeter into pieces.
    return circle_perimeters(DATASET_SIZE, [(7, 7), (21, 7), (7, 21), (21, 21)], (4,))


def clock_28() -> np.ndarray:
    """The clock at 28x28: rings of radius 13 and 12 at the centre, ticks 3 px wide."""
    # The double ring redrawn at radii 13 and 12 (the 32x32 ones, 15 and 14, scaled), ticks
    # 3 px wide crossing both rings: 22.4% against 21.3%. Nearest resampling tears the rings.
    out = circle_perimeters(DATASET_SIZE, [(14, 14)], (13, 12))
    tick = 5
    out[13:16, :tick] = 1
    out[13:16, -tick:] = 1
    out[:tick, 13:16] = 1
    out[-tick:, 13:16] = 1
    return out


def random_28() -> np.ndarray:
    """The random background at 28x28: the same rate, drawn at 28x28."""
    return noise(RANDOM_FRACTION, DATASET_SIZE)


@dataclass(frozen=True)
class PaperBackground:
    """One of the paper's test backgrounds: ``draw`` gives its ``SIZE x SIZE`` form (also
    what calling the record gives), ``draw_28`` its ``DATASET_SIZE x DATASET_SIZE`` form
    (what a 28x28 model sees, size rule ``native-28`` of ``bgbench.harness.sizes``), and
    ``paper_column`` its column in the paper's Table 1 (``bgbench.records.Method.paper``;
    None: not in the paper)."""

    name: str
    draw: Callable[[], np.ndarray]
    draw_28: Callable[[], np.ndarray]
    paper_column: int | None

    def __call__(self) -> np.ndarray:
        return self.draw()


# The registry, by name, in the order bgbench lists the backgrounds (test sets, tables,
# figures): adding a background is adding its record here.
BACKGROUNDS: dict[str, PaperBackground] = {b.name: b for b in (
    PaperBackground("stripes", stripes, _centre(stripes), 0),
    PaperBackground("board", board, _centre(board), 1),
    PaperBackground("border", border, border_28, 2),
    PaperBackground("circles", circles, circles_28, 3),
    PaperBackground("clock", clock, clock_28, 4),
    PaperBackground("random", random, random_28, 5),
)}


def background(name: str) -> np.ndarray:
    """The named background as ``uint8 [32, 32]`` of zeros and ones."""
    return paper_background(name).draw()


def paper_background(name: str) -> PaperBackground:
    """The record of the named background; a clear error if there is none."""
    if name not in BACKGROUNDS:
        raise BgbenchError(f"unknown background {name!r}; choose from {', '.join(BACKGROUNDS)}")
    return BACKGROUNDS[name]


def pad(images: np.ndarray) -> np.ndarray:
    """Zero-pad ``[..., 28, 28]`` images by 2 on every side to ``[..., 32, 32]``."""
    width = [(0, 0)] * (images.ndim - 2) + [(PAD, PAD), (PAD, PAD)]
    return np.pad(images, width)


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 pixels to float32 in [0, 1] (``x / 255``); float input is returned as float32."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255)
    return images.astype(np.float32, copy=False)


def foreground(images: np.ndarray) -> np.ndarray:
    """The object region of ``[N, H, W]`` images: ``x > 0`` dilated by a disk of radius 2."""
    from scipy.ndimage import binary_dilation
    from skimage.morphology import disk

    structure = disk(DILATION_RADIUS).astype(bool)[None]
    return binary_dilation(images > 0, structure=structure)


def apply_reference(images: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Pure numpy/scipy: ``[N, H, W]`` images with ``bg [H, W]`` outside the object.

    Image pixels are converted by ``to_float`` (uint8 ``x / 255``). The background is a
    value in [0, 1] already (binary 0/1 for the paper's), so it is cast, never divided:
    a set background pixel is white (1.0). Returns float32 ``[N, 1, H, W]``. This is the
    definition the fast path (``apply``, through ``bgbench._core``) must match bit for bit.
    """
    _check_images(images, bg)
    out = np.where(foreground(images), to_float(images), bg.astype(np.float32)[None])
    return out[:, None].astype(np.float32, copy=False)


_warned_fallback = False


def apply(images: np.ndarray, bg: np.ndarray, threads: int = 0) -> np.ndarray:
    """Composite ``bg [H, W]`` behind ``[N, H, W]`` images; float32 ``[N, 1, H, W]``.

    Uses the compiled core (multi-threaded, ``threads=0`` means all cores); where it is
    missing, falls back to ``apply_reference`` with one warning.
    """
    global _warned_fallback
    _check_images(images, bg)
    try:
        from bgbench import _core
    except ImportError:
        if not _warned_fallback:
            warnings.warn("bgbench._core is not built; using the slow numpy reference "
                          "(run `pip install --no-build-isolation -e .`)", stacklevel=2)
            _warned_fallback = True
        return apply_reference(images, bg)
    return _core.build_test_set(np.ascontiguousarray(images), np.ascontiguousarray(bg),
                                DILATION_RADIUS, threads)


def _check_images(images: np.ndarray, bg: np.ndarray) -> None:
    if images.ndim != 3:
        raise ValueError(f"images must be [N, H, W], got shape {images.shape}")
    if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
        raise TypeError(f"images must be uint8 (0..255) or float (0..1), got {images.dtype}")
    if bg.shape != images.shape[1:]:
        raise ValueError(f"background shape {bg.shape} does not match images {images.shape[1:]}")
