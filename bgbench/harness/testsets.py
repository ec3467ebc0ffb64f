"""The test sets of one dataset (clean, six backgrounds, the noise sweep), built once and cached.

Composites are kept as ``uint8 [N, 32, 32]``: every pixel of a composite is a test-image byte
or a background value of 0 or 1 (255 after scaling), so the bytes hold it exactly at a quarter
of the memory of float32, and one batch is scaled to float32 just before it is fed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from bgbench import backgrounds as bgs
from bgbench.errors import BgbenchError

CLEAN = "clean"
NOISE = "noise"


@dataclass(frozen=True, order=True)
class TestSet:
    """One test set: ``clean``, a background name, or ``noise`` with its rate as parameter."""

    name: str
    parameter: float | None = None

    @property
    def label(self) -> str:
        """``clean``, ``stripes``, ... or ``noise=0.01``."""
        return self.name if self.parameter is None else f"{self.name}={self.parameter}"


def standard_test_sets(backgrounds: list[str] | tuple[str, ...] | None = None,
                       noise_sweep: bool = False) -> list[TestSet]:
    """Clean, then the named backgrounds (default all six, paper order), then the 20 noise rates."""
    names = list(bgs.BACKGROUNDS) if backgrounds is None else list(backgrounds)
    for name in names:
        if name not in bgs.BACKGROUNDS:
            raise BgbenchError(f"unknown background {name!r}; choose from "
                               f"{', '.join(bgs.BACKGROUNDS)} or all")
    sets = [TestSet(CLEAN)] + [TestSet(name) for name in names]
    if noise_sweep:
        sets += [TestSet(NOISE, rate) for rate in bgs.NOISE_RATES]
    return sets


def _background_image(test_set: TestSet) -> np.ndarray:
    if test_set.name == NOISE:
        return bgs.noise(float(test_set.parameter))
    return bgs.background(test_set.name)


class TestSuite:
    """A dataset's test images and labels, and every composite asked for so far.

    ``images`` are the raw ``uint8 [N, 28, 28]`` test images; composites are built with
    ``bgbench.backgrounds.apply`` on the padded images the first time they are asked for.
    """

    __test__ = False  # not a pytest class, despite the name

    def __init__(self, dataset: str, images: np.ndarray, labels: np.ndarray, threads: int = 0):
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise BgbenchError(f"{dataset} test images must be uint8 [N, 28, 28], got "
                               f"{images.dtype} {list(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise BgbenchError(f"{dataset}: {labels.shape[0]} labels for {images.shape[0]} images")
        self.dataset = dataset
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.threads = threads
        self.padded = np.ascontiguousarray(bgs.pad(images))
        self._cache: dict[TestSet, np.ndarray] = {TestSet(CLEAN): self.padded}

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def composite(self, test_set: TestSet) -> np.ndarray:
        """``uint8 [N, 32, 32]`` images of ``test_set`` (built on first use, then cached)."""
        cached = self._cache.get(test_set)
        if cached is None:
            bg = _background_image(test_set)
            floats = bgs.apply(self.padded, bg, threads=self.threads)[:, 0]
            # Exact: every value is k/255 for an integer k (see the module docstring).
            cached = np.rint(floats * np.float32(255)).astype(np.uint8)
            self._cache[test_set] = cached
        return cached

    def build(self, test_sets: list[TestSet]) -> None:
        """Build every composite in ``test_sets`` now (so timing excludes it)."""
        for test_set in test_sets:
            self.composite(test_set)


def load_suite(dataset: str, data_root: str | os.PathLike | None = None,
               limit: int | None = None, threads: int = 0) -> TestSuite:
    """The test split of ``dataset`` (first ``limit`` images if given) as a ``TestSuite``."""
    from bgbench.data import load_numpy

    images, labels = load_numpy(dataset, "test", data_root=data_root)
    if limit is not None:
        if limit <= 0:
            raise BgbenchError(f"--limit must be positive, got {limit}")
        images, labels = images[:limit], labels[:limit]
    return TestSuite(dataset, images, labels, threads=threads)


def to_model_input(batch_u8: np.ndarray, input_size: int) -> np.ndarray:
    """``uint8 [B, 32, 32]`` to float32 ``[B, 1, S, S]`` in [0, 1] (centre crop when S is 28)."""
    if input_size != bgs.SIZE:
        margin = (bgs.SIZE - input_size) // 2
        batch_u8 = batch_u8[:, margin:margin + input_size, margin:margin + input_size]
    out = np.empty((batch_u8.shape[0], 1, input_size, input_size), np.float32)
    np.divide(batch_u8[:, None], np.float32(255), out=out, dtype=np.float32)
    return out
