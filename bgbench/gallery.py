"""The background gallery: each background alone, then applied to sample test images; and the
same for the extended suite."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bgbench.backgrounds import BACKGROUNDS, SIZE, apply, background, foreground, pad, to_float
from bgbench.vocab import DEFAULT_SUITE, EXTENDED_SUITE, PAPER_SUITE


def gallery_grid(samples: dict[str, np.ndarray]) -> tuple[list[str], list[str], np.ndarray]:
    """Row labels, column labels and float32 tiles ``[rows, cols, 32, 32]``.

    ``samples`` maps a dataset name to uint8 test images ``[k, 28, 28]``. Row 0 shows each
    background alone; each further row is one sample, clean then under each background.
    """
    columns = ["clean", *BACKGROUNDS]
    rows = ["background"]
    tiles = [[np.zeros((SIZE, SIZE), np.float32)]
             + [background(name).astype(np.float32) for name in BACKGROUNDS]]
    for dataset, images in samples.items():
        padded = pad(images)
        applied = [apply(padded, background(name))[:, 0] for name in BACKGROUNDS]
        for i in range(len(images)):
            rows.append(f"{dataset} #{i}")
            tiles.append([to_float(padded[i])] + [a[i] for a in applied])
    return rows, columns, np.asarray(tiles, np.float32)


def extended_gallery_grid(samples: dict[str, np.ndarray]
                          ) -> tuple[list[str], list[str], np.ndarray]:
    """``gallery_grid`` for the extended suite: row 0 shows each set applied to a blank image
    (a background set's field, a photometric set's effect on black), then each sample."""
    from bgbench.extended import NAMES, extended_test_set

    columns = ["clean", *NAMES]
    rows = ["blank"]
    blank = np.zeros((1, SIZE, SIZE), np.uint8)
    tiles = [[to_float(blank[0])]
             + [to_float(extended_test_set(name, blank, foreground(blank))[0]) for name in NAMES]]
    for dataset, images in samples.items():
        padded = pad(images)
        mask = foreground(padded)
        applied = [extended_test_set(name, padded, mask) for name in NAMES]
        for i in range(len(images)):
            rows.append(f"{dataset} #{i}")
            tiles.append([to_float(padded[i])] + [to_float(a[i]) for a in applied])
    return rows, columns, np.asarray(tiles, np.float32)


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
