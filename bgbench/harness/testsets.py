"""The test sets of one dataset, built once and cached.

Two suites: ``paper`` (clean, the paper's six backgrounds and, on request, the noise sweep)
and ``extended``, which adds bgbench's extended suite (``bgbench.extended``: grey-level and
smooth backgrounds, whole-image photometric changes) to the paper's sets.

A test set at input size S is a function of two arrays: the dataset's images as the model
sees them clean (``uint8 [N, S, S]``, see ``bgbench.harness.sizes``) and their object mask
(``bool [N, S, S]``: non-zero pixels dilated by a disk of radius 2). ``composer`` returns
that function for a ``TestSet``. The extended functions are size-generic, so a 28x28 model
gets them applied to its own 28x28 images and mask.

Composites are kept as ``uint8``: every pixel is a test-image byte, a paper background's 0
or 255, or an extended set's output, which its definitions quantise to 8 bits; so the bytes
hold it exactly at a quarter of the memory of float32, and one batch is converted for the
model just before it is fed.

``Composites`` builds and caches the test sets of any images at each input size;
``TestSuite`` is those of a dataset's labelled test split. Every test set bgbench shows a
model or a person is built here: in the evaluation, ``bgbench score``, the export parity
check and the gallery (the worst-case search draws its own backgrounds behind a suite's
``images_at`` and ``object_mask``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bgbench import backgrounds as bgs
from bgbench import extended as ext
from bgbench.errors import BgbenchError
from bgbench.harness import sizes
from bgbench.harness.conventions import InputConvention
from bgbench.harness.params import ParameterError, check_positive
from bgbench.vocab import EXTENDED_SUITE, PAPER_SUITE, SUITES, suite_choices_help

CLEAN = "clean"
NOISE = "noise"

Composer = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True, order=True)
class TestSet:
    """One test set: ``clean``, a background name, ``noise`` with its rate as parameter, or
    the name of an extended-suite set."""

    __test__ = False  # not a pytest class, despite the name

    name: str
    parameter: float | None = None

    @property
    def label(self) -> str:
        """``clean``, ``stripes``, ... or ``noise=0.01``."""
        return self.name if self.parameter is None else f"{self.name}={self.parameter}"

    @property
    def suite(self) -> str:
        """``extended`` for a set of the extended suite, else ``paper``."""
        return EXTENDED_SUITE if self.name in ext.EXTENDED else PAPER_SUITE


def check_suite(suite: str) -> None:
    """Raise a clear error unless ``suite`` is one of ``SUITES``."""
    if suite not in SUITES:
        raise ParameterError("suite", f"must be one of {', '.join(SUITES)}", suite,
                             suite_choices_help())


def standard_test_sets(backgrounds: list[str] | tuple[str, ...] | None = None,
                       noise_sweep: bool = False, suite: str = PAPER_SUITE) -> list[TestSet]:
    """Clean, the named backgrounds (default all six, paper order), the 20 noise rates if
    asked for, then with ``suite="extended"`` every extended-suite set (registry order).

    ``backgrounds`` selects among the paper's six only; the extended suite is run whole.
    """
    check_suite(suite)
    names = list(bgs.BACKGROUNDS) if backgrounds is None else list(backgrounds)
    for name in names:
        if name not in bgs.BACKGROUNDS:
            raise ParameterError("backgrounds", "names an unknown background", name,
                                 f"choose from {', '.join(bgs.BACKGROUNDS)}")
    sets = [TestSet(CLEAN)] + [TestSet(name) for name in names]
    if noise_sweep:
        sets += [TestSet(NOISE, rate) for rate in bgs.NOISE_RATES]
    if suite == EXTENDED_SUITE:
        sets += [TestSet(name) for name in ext.NAMES]
    return sets


def composer(test_set: TestSet, size: int) -> Composer:
    """The function ``(images, object_mask) -> uint8 [N, size, size]`` that builds ``test_set``.

    An extended set's per-image patterns are seeded by the image's position in ``images``,
    which for a ``load_suite`` suite is its index in the dataset's test split.
    """
    if test_set.name == CLEAN:
        return lambda images, mask: images
    if test_set.suite == EXTENDED_SUITE:
        return lambda images, mask: ext.extended_test_set(test_set.name, images, mask)
    if test_set.name == NOISE:
        bg = sizes.noise_at(float(test_set.parameter), size)
    else:
        bg = sizes.background_at(test_set.name, size)
    white = bg * np.uint8(255)
    return lambda images, mask: np.where(mask, images, white[None])


def object_mask(images: np.ndarray, threads: int = 0) -> np.ndarray:
    """``bool [N, H, W]``: where each image's object is (``x > 0`` dilated by a disk of radius 2)."""
    # The compiled compositor dilates far faster than scipy; with a background of -1, which
    # no image pixel can equal, its output marks exactly the pixels outside the object.
    outside = np.full(images.shape[1:], -1, np.float32)
    return bgs.apply(images, outside, threads=threads)[:, 0] != -1


class Composites:
    """Test sets of some dataset images, built the first time each is asked for, then cached.

    ``images`` are raw ``uint8 [N, 28, 28]`` dataset images (labelled or not, such as a
    gallery's samples; ``name`` says whose in an error). At each input size S the clean
    images ``images_at(S)`` and their object mask ``object_mask(S)`` are built once and
    shared by every composite ``composite(test_set, S)``, all ``[N, S, S]`` under
    ``sizes.size_rule(S)``.
    """

    def __init__(self, images: np.ndarray, threads: int = 0, name: str = "test"):
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise BgbenchError(f"{name} images must be uint8 [N, 28, 28], got "
                               f"{images.dtype} {list(images.shape)}")
        self.images = images
        self.threads = threads
        self._images: dict[int, np.ndarray] = {}
        self._masks: dict[int, np.ndarray] = {}
        self._cache: dict[tuple[TestSet, int], np.ndarray] = {}

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def padded(self) -> np.ndarray:
        """The test images zero-padded to ``uint8 [N, 32, 32]`` (the paper's clean test set)."""
        return self.images_at(bgs.SIZE)

    def images_at(self, size: int) -> np.ndarray:
        """The clean test images as a ``size`` x ``size`` model sees them."""
        if size not in self._images:
            self._images[size] = np.ascontiguousarray(sizes.images_at(self.images, size))
        return self._images[size]

    def object_mask(self, size: int) -> np.ndarray:
        """``bool [N, size, size]``: the object region of ``images_at(size)``."""
        if size not in self._masks:
            self._masks[size] = object_mask(self.images_at(size), self.threads)
        return self._masks[size]

    def composite(self, test_set: TestSet, size: int = bgs.SIZE) -> np.ndarray:
        """``uint8 [N, size, size]`` images of ``test_set`` (built on first use, then cached)."""
        key = (test_set, size)
        if key not in self._cache:
            build = composer(test_set, size)
            self._cache[key] = build(self.images_at(size), self.object_mask(size))
        return self._cache[key]

    def build(self, test_sets: list[TestSet], size: int = bgs.SIZE) -> None:
        """Build every composite in ``test_sets`` at ``size`` now (so timing excludes it)."""
        for test_set in test_sets:
            self.composite(test_set, size)


class TestSuite(Composites):
    """A dataset's test images and labels, and every composite asked for so far.

    ``images`` are the raw ``uint8 [N, 28, 28]`` test images (or another ``split``'s, such as
    a training run's validation images) and ``labels`` their classes ``[N]`` (kept as
    int64); composites are built and cached as ``Composites`` builds them.
    """

    __test__ = False  # not a pytest class, despite the name

    def __init__(self, dataset: str, images: np.ndarray, labels: np.ndarray, threads: int = 0,
                 split: str = "test"):
        super().__init__(images, threads, name=f"{dataset} {split}")
        if labels.shape != (images.shape[0],):
            raise BgbenchError(f"{dataset}: {labels.shape[0]} labels for {images.shape[0]} images")
        self.dataset = dataset
        self.labels = labels.astype(np.int64, copy=False)


def load_suite(dataset: str, data_root: str | os.PathLike | None = None,
               limit: int | None = None, threads: int = 0) -> TestSuite:
    """The test split of ``dataset`` (first ``limit`` images if given) as a ``TestSuite``."""
    from bgbench.data import load_numpy

    check_positive("limit", limit)
    images, labels = load_numpy(dataset, "test", data_root=data_root)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return TestSuite(dataset, images, labels, threads=threads)


def to_model_input(batch_u8: np.ndarray, input_size: int) -> np.ndarray:
    """``uint8 [B, S, S]`` composites to the default model input: float32 ``[B, 1, S, S]`` in [0, 1]."""
    return InputConvention(size=input_size).feed(batch_u8)
