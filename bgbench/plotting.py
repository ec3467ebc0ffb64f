"""Matplotlib without a display, and PNG figures written atomically."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bgbench.fileio import atomic_path


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: str | Path, dpi: int = 80) -> Path:
    """Write ``fig`` to ``path`` as a PNG atomically, close it, and return the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    pyplot().close(fig)
    return path


def panels_by_dataset(groups: Sequence[Any], path: str | Path, *, panel_width: float,
                      margin: float, xlabel: str, titles: Mapping[str, str],
                      draw: Callable[[Any, list[Any]], dict[str, Any]],
                      suptitle: Callable[[], str]) -> Path:
    """An accuracy figure with one panel per dataset of ``groups`` (``.dataset``, first-seen
    order; a shared 0-100 y axis), written to ``path``: ``draw(ax, groups_of_the_dataset)``
    plots a panel and returns its legend handles by label, and ``suptitle()``, called once
    every panel is drawn, gives the figure's title; the legend sits outside the panels."""
    plt = pyplot()
    datasets = list(dict.fromkeys(g.dataset for g in groups))
    fig, axes = plt.subplots(1, len(datasets), figsize=(panel_width * len(datasets) + margin, 3.2),
                             sharey=True, squeeze=False, layout="constrained")
    handles: dict[str, Any] = {}
    for ax, dataset in zip(axes[0], datasets, strict=True):
        for label, handle in draw(ax, [g for g in groups if g.dataset == dataset]).items():
            handles.setdefault(label, handle)
        ax.set_title(titles.get(dataset, dataset), fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("accuracy (%)")
    fig.suptitle(suptitle(), fontsize=8)
    fig.legend(list(handles.values()), list(handles), loc="outside right upper", fontsize=7)
    return save_png(fig, path)
