"""The background gallery: each background alone, then applied to sample test images; and the
same for the extended suite. Every tile is a test set as the harness builds it for a 32x32
model."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from bgbench.backgrounds import BACKGROUNDS, SIZE, to_float
from bgbench.harness.sizes import DATASET_SIZE
from bgbench.harness.testsets import CLEAN, Composites, TestSet
from bgbench.vocab import DEFAULT_SUITE, EXTENDED_SUITE, PAPER_SUITE


def gallery_grid(samples: dict[str, np.ndarray]) -> tuple[list[str], list[str], np.ndarray]:
    """Row labels, column labels and float32 tiles ``[rows, cols, 32, 32]``.

    ``samples`` maps a dataset name to uint8 test images ``[k, 28, 28]``. Row 0 shows each
    background alone; each further row is one sample, clean then under each background.
    """
    return _grid(samples, BACKGROUNDS, "background")


def extended_gallery_grid(samples: dict[str, np.ndarray]
                          ) -> tuple[list[str], list[str], np.ndarray]:
    """``gallery_grid`` for the extended suite: row 0 shows each set applied to a blank image
    (a background set's field, a photometric set's effect on black), then each sample."""
    from bgbench.extended import NAMES

    return _grid(samples, NAMES, "blank")


def _grid(samples: dict[str, np.ndarray], names: Iterable[str], first_row: str
          ) -> tuple[list[str], list[str], np.ndarray]:
    # A blank image has no object, so its composites are the backgrounds alone.
    columns = [CLEAN, *names]
    test_sets = [TestSet(name) for name in columns]
    blank = Composites(np.zeros((1, DATASET_SIZE, DATASET_SIZE), np.uint8), name="blank")
    rows, tiles = [first_row], _tiles(blank, test_sets)
    for dataset, images in samples.items():
        rows += [f"{dataset} #{i}" for i in range(len(images))]
        tiles += _tiles(Composites(images, name=f"{dataset} sample"), test_sets)
    return rows, columns, np.asarray(tiles, np.float32)


def _tiles(composites: Composites, test_sets: list[TestSet]) -> list[list[np.ndarray]]:
    # One row per image, one float32 [32, 32] tile per test set.
    sets = [to_float(composites.composite(test_set, SIZE)) for test_set in test_sets]
    return [[s[i] for s in sets] for i in range(len(composites))]


GRIDS = {PAPER_SUITE: gallery_grid, EXTENDED_SUITE: extended_gallery_grid}


def draw_gallery(path: str | Path, samples: dict[str, np.ndarray], suite: str = DEFAULT_SUITE) -> Path:
    """Draw the gallery of ``suite`` (``paper`` or ``extended``) to a PNG at ``path`` (written
    atomically); returns the path."""
    from bgbench.plotting import pyplot, save_png

    plt = pyplot()
    if suite not in GRIDS:
        raise ValueError(f"unknown suite {suite!r}; choose from {', '.join(GRIDS)}")
    rows, columns, tiles = GRIDS[suite](samples)
    fig, axes = plt.subplots(len(rows), len(columns),
                             figsize=(1.1 * len(columns), 1.1 * len(rows) + 0.3), squeeze=False)
    for r, row in enumerate(axes):
        for c, ax in enumerate(row):
            ax.imshow(tiles[r, c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=8)
            if c == 0:
                ax.set_ylabel(rows[r], fontsize=7)
    fig.tight_layout(pad=0.3)
    return save_png(fig, path)
